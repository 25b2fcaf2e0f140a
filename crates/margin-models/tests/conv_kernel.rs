//! Hand-written 3×3 convolution kernel vs burn-nn's `Conv2d`: forward output and gradients
//! (input, weight, bias) on Flex with and without autodiff, tracked and untracked input, the
//! ConvNet-4 shapes and odd ones, f64, gradient checkpointing, and the fallback for other
//! configurations.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use margin_models::kernels::conv3x3;

struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.uniform()).sum::<f64>() * 1.7320508 - 3.4641016
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()
}

fn assert_close(name: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{name}: length");
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-3);
    let err = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= tol * scale,
        "{name}: max abs err {err:e} > {tol:e} × {scale:e}"
    );
}

fn mk<const D: usize>(v: &[f64], s: [usize; D], dev: &Device, f64_: bool) -> Tensor<D> {
    let t = Tensor::<D>::from_data(TensorData::new(v.to_vec(), s), dev);
    if f64_ {
        t.cast(FloatDType::F64)
    } else {
        t.cast(FloatDType::F32)
    }
}

fn run(
    shape: [usize; 4],
    cout: usize,
    seed: u64,
    dev: &Device,
    fused: bool,
    f64_: bool,
    track_x: bool,
) -> Vec<Vec<f64>> {
    run_with(|c| c, shape, cout, seed, dev, fused, f64_, track_x)
}

/// Returns (out, dx, dw, db) for the fused (true) or Burn (false) path.
#[allow(clippy::too_many_arguments)]
fn run_with(
    dev_conv: impl Fn(Conv2dConfig) -> Conv2dConfig,
    shape: [usize; 4],
    cout: usize,
    seed: u64,
    dev: &Device,
    fused: bool,
    f64_: bool,
    track_x: bool,
) -> Vec<Vec<f64>> {
    let [n, cin, h, w] = shape;
    let mut r = Lcg(seed);
    let xv = r.vec(n * cin * h * w);
    let wv: Vec<f64> = r.vec(cout * cin * 9).iter().map(|v| v * 0.2).collect();
    let bv = r.vec(cout);
    let gv = r.vec(n * cout * h * w);
    let mut conv: Conv2d = dev_conv(
        Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
    )
    .init(dev);
    let wt = mk(&wv, [cout, cin, 3, 3], dev, f64_);
    let bt = mk(&bv, [cout], dev, f64_);
    conv.weight = burn::module::Param::from_tensor(wt);
    if conv.bias.is_some() {
        conv.bias = Some(burn::module::Param::from_tensor(bt));
    }
    let mut x = mk(&xv, shape, dev, f64_);
    if dev.is_autodiff() && track_x {
        x = x.require_grad();
    }
    let out = if fused {
        conv3x3(x.clone(), &conv)
    } else {
        conv.forward(x.clone())
    };
    let mut res = vec![host(out.clone())];
    if dev.is_autodiff() {
        // Output weights for the backward pass (output shape differs under fallback configs).
        let od = out.dims();
        let gt = mk(&gv[..od.iter().product::<usize>()], od, dev, f64_);
        let grads = (out * gt).sum().backward();
        if track_x {
            res.push(host(x.grad(&grads).unwrap()));
        }
        res.push(host(conv.weight.grad(&grads).unwrap()));
        if let Some(b) = conv.bias.as_ref() {
            res.push(host(b.grad(&grads).unwrap()));
        }
    }
    res
}

const SHAPES: [[usize; 4]; 8] = [
    [3, 1, 28, 28],
    [5, 3, 14, 14],
    [4, 64, 7, 7],
    [7, 64, 3, 3],
    [3, 3, 5, 4],
    [128, 1, 28, 28],
    [33, 64, 14, 14],
    [128, 64, 3, 3],
];

#[test]
fn forward_and_grads_match_burn() {
    for dev in [Device::flex(), Device::flex().autodiff()] {
        for (i, s) in SHAPES.iter().enumerate() {
            for track_x in [true, false] {
                let a = run(*s, 64, 11 + i as u64, &dev, true, false, track_x);
                let b = run(*s, 64, 11 + i as u64, &dev, false, false, track_x);
                for (k, (u, v)) in a.iter().zip(&b).enumerate() {
                    assert_close(
                        &format!("{s:?} part {k} ad {} tx {track_x}", dev.is_autodiff()),
                        u,
                        v,
                        1e-4,
                    );
                }
            }
        }
    }
}

#[test]
fn f64_matches_burn() {
    let dev = Device::flex().autodiff();
    for (i, s) in [[3usize, 3, 5, 4], [4, 64, 7, 7], [3, 1, 28, 28]]
        .iter()
        .enumerate()
    {
        let a = run(*s, 64, 5 + i as u64, &dev, true, true, true);
        let b = run(*s, 64, 5 + i as u64, &dev, false, true, true);
        for (k, (u, v)) in a.iter().zip(&b).enumerate() {
            assert_close(&format!("f64 {s:?} part {k}"), u, v, 1e-9);
        }
    }
}

#[test]
fn gradients_match_under_gradient_checkpointing() {
    let dev = Device::flex().autodiff().gradient_checkpointing();
    let a = run([4, 3, 9, 10], 8, 3, &dev, true, false, true);
    let b = run([4, 3, 9, 10], 8, 3, &dev, false, false, true);
    for (k, (u, v)) in a.iter().zip(&b).enumerate() {
        assert_close(&format!("checkpointed part {k}"), u, v, 1e-4);
    }
}

#[test]
fn other_configurations_fall_back_to_burn() {
    let dev = Device::flex().autodiff();
    let configs: [fn(Conv2dConfig) -> Conv2dConfig; 4] = [
        |c| c.with_stride([2, 2]),
        |c| c.with_bias(false),
        |c| c.with_padding(PaddingConfig2d::Valid),
        |c| c.with_dilation([2, 2]),
    ];
    for (i, f) in configs.into_iter().enumerate() {
        let a = run_with(f, [2, 3, 9, 8], 5, 40 + i as u64, &dev, true, false, true);
        let b = run_with(f, [2, 3, 9, 8], 5, 40 + i as u64, &dev, false, false, true);
        assert_eq!(a, b, "fallback config {i} must be Burn's conv exactly");
    }
}

#[test]
fn weight_gradient_does_not_depend_on_thread_count() {
    let dev = Device::flex().autodiff();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let a = one.install(|| run([37, 8, 7, 7], 16, 9, &dev, true, false, true));
    let b = three.install(|| run([37, 8, 7, 7], 16, 9, &dev, true, false, true));
    assert_eq!(a, b);
}
