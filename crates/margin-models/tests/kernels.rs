//! Fused BatchNorm → ReLU → MaxPool kernel vs the unfused Burn composition: forward output,
//! batch statistics, gradients (x, γ, β), running statistics, odd spatial sizes, f64.

use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use margin_models::kernels::{batch_norm_relu_max_pool, batch_norm_relu_max_pool_train, unfused_train};

/// Deterministic normal-ish values (sum of uniforms) from a 64-bit LCG.
struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.uniform()).sum::<f64>() * 1.7320508 - 3.4641016
    }
    fn vec(&mut self, n: usize, scale: f64, offset: f64) -> Vec<f32> {
        (0..n).map(|_| (self.normal() * scale + offset) as f32).collect()
    }
}

fn host(t: Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
}
fn host4(t: Tensor<4>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
}

/// max |a − b| / (atol + max |b|) over all elements.
fn assert_close(name: &str, a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{name}: length");
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-3);
    let err = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(err <= tol * scale, "{name}: max abs err {err:e} > {tol:e} × {scale:e}");
}

struct Case {
    shape: [usize; 4],
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    w: Vec<f32>,
}

fn case(shape: [usize; 4], seed: u64) -> Case {
    let mut r = Lcg(seed);
    let [n, c, h, w] = shape;
    let x = r.vec(n * c * h * w, 1.5, 0.7);
    // γ spans negative, positive and one exact zero; β shifts part of the output below zero.
    let mut gamma = r.vec(c, 1.0, 0.3);
    gamma[c - 1] = 0.0;
    if c > 1 {
        gamma[0] = -gamma[0].abs() - 0.2;
    }
    let beta = r.vec(c, 0.5, 0.0);
    let wgt = r.vec(n * c * (h / 2) * (w / 2), 1.0, 0.0);
    Case { shape, x, gamma, beta, w: wgt }
}

fn run(c: &Case, device: &Device, fused: bool, f64_: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>, Option<[Vec<f64>; 3]>) {
    let [n, ch, h, w] = c.shape;
    let mk4 = |v: &Vec<f32>, s: [usize; 4]| {
        let t = Tensor::<4>::from_data(TensorData::new(v.clone(), s), device);
        if f64_ { t.cast(FloatDType::F64) } else { t }
    };
    let mk1 = |v: &Vec<f32>| {
        let t = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), device);
        if f64_ { t.cast(FloatDType::F64) } else { t }
    };
    let ad = device.is_autodiff();
    let (mut x, mut g, mut b) = (mk4(&c.x, c.shape), mk1(&c.gamma), mk1(&c.beta));
    if ad {
        x = x.require_grad();
        g = g.require_grad();
        b = b.require_grad();
    }
    let r = if fused {
        batch_norm_relu_max_pool_train(x.clone(), g.clone(), b.clone(), 1e-5)
    } else {
        unfused_train(x.clone(), g.clone(), b.clone(), 1e-5)
    };
    assert_eq!(r.output.dims(), [n, ch, h / 2, w / 2]);
    let out = host4(r.output.clone());
    let grads = ad.then(|| {
        let wt = mk4(&c.w, [n, ch, h / 2, w / 2]);
        let gr = (r.output.clone() * wt).sum().backward();
        [
            host4(x.grad(&gr).unwrap()),
            host(g.grad(&gr).unwrap()),
            host(b.grad(&gr).unwrap()),
        ]
    });
    (out, host(r.mean), host(r.variance), grads)
}

const SHAPES: [[usize; 4]; 5] = [[2, 3, 7, 7], [4, 5, 8, 8], [3, 4, 9, 6], [2, 2, 2, 3], [8, 4, 28, 28]];

#[test]
fn forward_and_statistics_match_unfused() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for (i, s) in SHAPES.iter().enumerate() {
            let c = case(*s, 17 + i as u64);
            let (o1, m1, v1, _) = run(&c, &device, true, false);
            let (o2, m2, v2, _) = run(&c, &device, false, false);
            assert_close(&format!("output {s:?}"), &o1, &o2, 1e-5);
            assert_close(&format!("mean {s:?}"), &m1, &m2, 1e-5);
            assert_close(&format!("variance {s:?}"), &v1, &v2, 1e-5);
        }
    }
}

#[test]
fn gradients_match_unfused_autodiff() {
    let device = Device::flex().autodiff();
    for (i, s) in SHAPES.iter().enumerate() {
        let c = case(*s, 101 + i as u64);
        let [gx1, gg1, gb1] = run(&c, &device, true, false).3.unwrap();
        let [gx2, gg2, gb2] = run(&c, &device, false, false).3.unwrap();
        assert_close(&format!("dx {s:?}"), &gx1, &gx2, 1e-4);
        assert_close(&format!("dgamma {s:?}"), &gg1, &gg2, 1e-4);
        assert_close(&format!("dbeta {s:?}"), &gb1, &gb2, 1e-4);
    }
}

#[test]
fn gradients_match_under_gradient_checkpointing() {
    let device = Device::flex().autodiff().gradient_checkpointing();
    let c = case([3, 4, 10, 9], 55);
    let [gx1, gg1, gb1] = run(&c, &device, true, false).3.unwrap();
    let [gx2, gg2, gb2] = run(&c, &device, false, false).3.unwrap();
    assert_close("dx checkpointed", &gx1, &gx2, 1e-4);
    assert_close("dgamma checkpointed", &gg1, &gg2, 1e-4);
    assert_close("dbeta checkpointed", &gb1, &gb2, 1e-4);
}

#[test]
fn f64_matches_unfused() {
    let device = Device::flex().autodiff();
    let c = case([3, 4, 9, 7], 7);
    let (o1, m1, v1, g1) = run(&c, &device, true, true);
    let (o2, m2, v2, g2) = run(&c, &device, false, true);
    assert_close("output f64", &o1, &o2, 1e-10);
    assert_close("mean f64", &m1, &m2, 1e-10);
    assert_close("variance f64", &v1, &v2, 1e-10);
    for (k, (a, b)) in g1.unwrap().iter().zip(g2.unwrap().iter()).enumerate() {
        assert_close(&format!("grad {k} f64"), a, b, 1e-9);
    }
}

fn unfused_block(x: Tensor<4>, bn: &BatchNorm) -> Tensor<4> {
    relu(MaxPool2dConfig::new([2, 2]).init().forward(bn.forward(x)))
}

#[test]
fn drop_in_updates_running_statistics_like_batch_norm() {
    for device in [Device::flex().autodiff(), Device::flex()] {
        let c = case([4, 3, 10, 10], 3);
        let bn_a: BatchNorm = BatchNormConfig::new(3).with_momentum(0.3).init(&device);
        let bn_b: BatchNorm = BatchNormConfig::new(3).with_momentum(0.3).init(&device);
        for step in 0..3 {
            let x = Tensor::<4>::from_data(TensorData::new(c.x.iter().map(|v| v * (1.0 + step as f32)).collect::<Vec<_>>(), c.shape), &device);
            let a = batch_norm_relu_max_pool(x.clone(), &bn_a);
            let b = unfused_block(x, &bn_b);
            assert_close("drop-in output", &host4(a), &host4(b), 1e-5);
            assert_close("running mean", &host(bn_a.running_mean.value()), &host(bn_b.running_mean.value()), 1e-6);
            assert_close("running var", &host(bn_a.running_var.value()), &host(bn_b.running_var.value()), 1e-6);
        }
    }
}
