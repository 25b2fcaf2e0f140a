//! The channels-last training path equals Burn's ops: each operation (value and gradients
//! against Burn's NCHW composition with autodiff), and whole ResNets (features, the gradient of
//! every convolution and BatchNorm parameter, the running statistics), trainable and partly
//! frozen.

use burn::backend::Dispatch;
use burn::module::Module;
use burn::tensor::module::{batch_norm_train, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Tensor};
use margin_data::ResnetDepth;

use super::super::nhwc::tests::perturbed;
use super::super::train_ops::NhwcTrainBackend;
use super::*;

fn rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.into_data().convert::<f32>().try_into_vec::<f32>().unwrap(), b.into_data().convert::<f32>().try_into_vec::<f32>().unwrap());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
}

/// `‖a − b‖ / ‖b‖` (the gradient-check measure: a max-abs ratio over a million noisy
/// elements is an outlier's).
fn rel_l2<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (a.into_data().convert::<f64>().try_into_vec::<f64>().unwrap(), b.into_data().convert::<f64>().try_into_vec::<f64>().unwrap());
    let num: f64 = a.iter().zip(&b).map(|(p, q)| (p - q) * (p - q)).sum();
    let den: f64 = b.iter().map(|q| q * q).sum();
    (num.sqrt() / den.sqrt().max(1e-12)) as f32
}

fn random<const D: usize>(dims: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(dims, Distribution::Normal(0.0, 1.0), device)
}

/// Value, `∂x` and `∂W` of the channels-last convolution equal Burn's `conv2d` on NCHW, for
/// every geometry of a ResNet (stem 7×7/2, 3×3/1 by Winograd, 3×3/2, 1×1/2, 1×1/1) at odd sizes,
/// and at sizes with several `∂W` row chunks (a short last one) and several `∂x` tiles per image.
#[test]
fn convolution_equals_burns_conv2d_value_and_gradients() {
    let device = Device::flex().autodiff();
    device.seed(3);
    for (k, s, p, ci, co, h, w) in [(7, 2, 3, 3, 8, 13, 11), (3, 1, 1, 5, 6, 9, 7), (3, 1, 1, 16, 9, 1, 2), (3, 2, 1, 5, 6, 9, 8), (1, 2, 0, 5, 6, 9, 7), (1, 1, 0, 7, 4, 5, 3), (1, 1, 0, 4, 5, 40, 40), (7, 2, 3, 3, 4, 51, 49)] {
        let x = random([2, h, w, ci], &device).require_grad();
        let wt = random([co, ci, k, k], &device).require_grad();
        let fast = Tensor::<4>::from_dispatch(<Dispatch as NhwcTrainBackend>::conv_nhwc(x.clone().into_dispatch(), wt.clone().into_dispatch(), s, p));
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let reference = conv2d(x.clone().permute([0, 3, 1, 2]), wt.clone(), None, options).permute([0, 2, 3, 1]);
        let r = random(reference.dims(), &device);
        let d = rel_diff(fast.clone(), reference.clone());
        assert!(d < 1e-5, "k{k} s{s}: value {d}");
        let (gf, gr) = ((fast * r.clone()).sum().backward(), (reference * r).sum().backward());
        let dx = rel_diff(x.grad(&gf).unwrap(), x.grad(&gr).unwrap());
        let dw = rel_diff(wt.grad(&gf).unwrap(), wt.grad(&gr).unwrap());
        assert!(dx < 1e-5 && dw < 1e-5, "k{k} s{s} {ci}->{co} {h}x{w}: dx {dx}, dw {dw}");
    }
}

/// Training-mode BatchNorm over the last dimension, with ReLU and with residual + ReLU, equals
/// Burn's `batch_norm_train` (+ `add`, `relu`): output, batch statistics, and the gradients of
/// the input, γ, β and the residual.
#[test]
fn batch_norm_equals_burns_value_statistics_and_gradients() {
    let device = Device::flex().autodiff();
    device.seed(4);
    // 60 rows (one statistics chunk) and 1,140 (three, the last one short).
    for (relu_tail, residual, [h, w]) in [(false, false, [5, 4]), (true, false, [5, 4]), (true, true, [5, 4]), (true, true, [20, 19]), (false, false, [20, 19])] {
        let x = random([3, h, w, 6], &device).mul_scalar(2.0).add_scalar(0.5).require_grad();
        let res = random([3, h, w, 6], &device).require_grad();
        let gamma = Tensor::<1>::random([6], Distribution::Uniform(0.5, 1.5), &device).require_grad();
        let beta = random([6], &device).require_grad();
        let (xd, gd, bd) = (x.clone().into_dispatch(), gamma.clone().into_dispatch(), beta.clone().into_dispatch());
        let fast = if residual {
            <Dispatch as NhwcTrainBackend>::batch_norm_add_relu_nhwc(xd, res.clone().into_dispatch(), gd, bd, 1e-5)
        } else {
            <Dispatch as NhwcTrainBackend>::batch_norm_nhwc(xd, gd, bd, 1e-5, relu_tail)
        };
        let reference = batch_norm_train(x.clone().permute([0, 3, 1, 2]), gamma.clone(), beta.clone(), 1e-5);
        let mut y = reference.output.permute([0, 2, 3, 1]);
        if residual {
            y = y.add(res.clone());
        }
        if relu_tail {
            y = burn::tensor::activation::relu(y);
        }
        let out = Tensor::<4>::from_dispatch(fast.output);
        assert!(rel_diff(out.clone(), y.clone()) < 1e-5);
        assert!(rel_diff(Tensor::<1>::from_dispatch(fast.mean), reference.mean) < 1e-6);
        assert!(rel_diff(Tensor::<1>::from_dispatch(fast.variance), reference.variance) < 1e-6);
        let r = random(y.dims(), &device);
        let (gf, gr) = ((out * r.clone()).sum().backward(), (y * r).sum().backward());
        for (what, a, b) in [("x", x.grad(&gf), x.grad(&gr)), ("residual", res.grad(&gf), res.grad(&gr))] {
            if let (Some(a), Some(b)) = (a, b) {
                let d = rel_diff(a, b);
                assert!(d < 1e-4, "relu {relu_tail} residual {residual}: d{what} {d}");
            }
        }
        let dg = rel_diff(gamma.grad(&gf).unwrap(), gamma.grad(&gr).unwrap());
        let db = rel_diff(beta.grad(&gf).unwrap(), beta.grad(&gr).unwrap());
        assert!(dg < 1e-4 && db < 1e-4, "relu {relu_tail} residual {residual}: dgamma {dg}, dbeta {db}");
    }
}

/// The stem's max-pool equals Burn's `max_pool2d` 3×3/2 padding 1, value and gradient.
#[test]
fn max_pool_equals_burns_value_and_gradient() {
    let device = Device::flex().autodiff();
    device.seed(5);
    for (h, w) in [(7, 6), (8, 9), (1, 1), (2, 3)] {
        let x = random([2, h, w, 3], &device).require_grad();
        let fast = Tensor::<4>::from_dispatch(<Dispatch as NhwcTrainBackend>::max_pool_nhwc(x.clone().into_dispatch()));
        let reference = max_pool2d(x.clone().permute([0, 3, 1, 2]), MaxPoolOptions::new([3, 3]).with_stride([2, 2]).with_padding([1, 1])).permute([0, 2, 3, 1]);
        assert_eq!(rel_diff(fast.clone(), reference.clone()), 0.0);
        let r = random(reference.dims(), &device);
        let (gf, gr) = ((fast * r.clone()).sum().backward(), (reference * r).sum().backward());
        assert!(rel_diff(x.grad(&gf).unwrap(), x.grad(&gr).unwrap()) < 1e-6, "{h}x{w}");
    }
}

/// Every convolution weight and BatchNorm γ/β of `net`, and the running statistics.
fn parameters(net: &ResNet) -> (Vec<Tensor<4>>, Vec<Tensor<1>>, Vec<Tensor<1>>) {
    let mut convs = vec![net.conv1.weight.val()];
    let mut affine = vec![net.bn1.gamma.val(), net.bn1.beta.val()];
    let mut running = vec![net.bn1.running_mean.value(), net.bn1.running_var.value()];
    for b in net.layers.iter().flat_map(|s| &s.blocks) {
        convs.extend(b.convs().map(|c| c.weight.val()));
        let bns = [Some(&b.bn1), Some(&b.bn2), b.bn3.as_ref(), b.downsample.as_ref().map(|d| &d.bn)];
        for bn in bns.into_iter().flatten() {
            affine.extend([bn.gamma.val(), bn.beta.val()]);
            running.extend([bn.running_mean.value(), bn.running_var.value()]);
        }
    }
    (convs, affine, running)
}

/// Features and the gradient of every convolution weight (then of `x`) and BatchNorm γ/β
/// (`None` where there is none), by the channels-last path (`fast`) or Burn's ops, after one
/// backward of `Σ features · r`; and the running statistics after the step.
#[allow(clippy::type_complexity)]
fn one_step(net: &ResNet, x: Tensor<4>, r: Tensor<2>, fast: bool) -> (Tensor<2>, Vec<Option<Tensor<4>>>, Vec<Option<Tensor<1>>>, Vec<Tensor<1>>) {
    let features = if fast { net.forward_features(x.clone()) } else { net.forward_features_reference(x.clone()) };
    let grads = (features.clone() * r).sum().backward();
    let (convs, affine, running) = parameters(net);
    let conv_grads = convs.iter().map(|c| c.grad(&grads)).chain([x.grad(&grads)]).collect();
    (features.detach(), conv_grads, affine.iter().map(|a| a.grad(&grads)).collect(), running)
}

/// A whole ResNet (basic blocks and bottlenecks) trained through the channels-last path
/// equals Burn's ops: the features, the gradient of every parameter that has one, and the
/// running statistics after the step; with the stem and `layer1` frozen, and with `layer3`
/// frozen under an input that wants a gradient (∂x through frozen convolutions and eval-mode
/// BatchNorm), too.
///
/// Deep training-mode BatchNorm on a tiny batch is ill-conditioned (a ResNet-50 here moves its
/// stem gradient by a few per cent when the input moves by 1e-6), so each difference is held
/// to `max(1e-4, 4 × s)` with `s` the reference's own change under that perturbation: a
/// wrong gradient is off by O(1), far outside it.
#[test]
fn training_forward_and_gradients_equal_burns_ops() {
    // (depth, stages frozen from the stem, a frozen middle stage, input size)
    for (depth, frozen_stages, middle, hw) in [(ResnetDepth::R18, 0, None, [37, 42]), (ResnetDepth::R18, 1, None, [33, 32]), (ResnetDepth::R18, 0, Some(2), [34, 33]), (ResnetDepth::R50, 0, None, [64, 67])] {
        let device = Device::flex().autodiff();
        device.seed(21);
        let mut base = perturbed(depth, &device);
        if frozen_stages > 0 {
            base.conv1 = base.conv1.clone().freeze();
            base.bn1 = base.bn1.clone().freeze();
            for s in base.layers.iter_mut().take(frozen_stages) {
                *s = s.clone().freeze();
            }
        }
        if let Some(k) = middle {
            base.layers[k] = base.layers[k].clone().freeze();
        }
        // Independent copies (their own running statistics), through the record.
        let copy = || perturbed(depth, &device).load_record(base.clone().into_record()).with_freeze_of(&base);
        let (mut x, r) = (random([2, 3, hw[0], hw[1]], &device), random([2, depth.feature_dim()], &device));
        if middle.is_some() {
            x = x.require_grad();
        }
        let net = copy();
        assert!(net.takes_nhwc_training(&x), "{depth:?}");
        let fast = one_step(&net, x.clone(), r.clone(), true);
        let reference = one_step(&copy(), x.clone(), r.clone(), false);
        let x_moved = x.clone().mul_scalar(1.0 + 1e-6).detach();
        let x_moved = if middle.is_some() { x_moved.require_grad() } else { x_moved };
        let moved = one_step(&copy(), x_moved, r, false);
        let tol = |a: f32| (4.0 * a).max(1e-4);
        let what = format!("{depth:?}, {frozen_stages} stage(s) frozen, middle {middle:?}");
        let d = rel_diff(fast.0, reference.0.clone());
        assert!(d < tol(rel_diff(moved.0, reference.0)), "{what}: features {d}");
        let mut compared = 0;
        for (i, ((a, b), s)) in fast.1.into_iter().zip(reference.1).zip(moved.1).enumerate() {
            match (a, b, s) {
                (Some(a), Some(b), Some(s)) => {
                    let (d, sens) = (rel_l2(a, b.clone()), rel_l2(s, b));
                    assert!(d < tol(sens), "{what}: conv {i} gradient {d} (reference's sensitivity {sens})");
                    compared += 1;
                }
                (None, None, None) => {}
                (a, b, _) => panic!("{what}: conv {i} has a gradient on one side only ({} / {})", a.is_some(), b.is_some()),
            }
        }
        for (i, ((a, b), s)) in fast.2.into_iter().zip(reference.2).zip(moved.2).enumerate() {
            match (a, b, s) {
                (Some(a), Some(b), Some(s)) => {
                    let (d, sens) = (rel_l2(a, b.clone()), rel_l2(s, b));
                    assert!(d < tol(sens), "{what}: BatchNorm parameter {i} gradient {d} (reference's sensitivity {sens})");
                }
                (None, None, None) => {}
                (a, b, _) => panic!("{what}: BatchNorm parameter {i} has a gradient on one side only ({} / {})", a.is_some(), b.is_some()),
            }
        }
        let convs = parameters(&base).0.len();
        let trainable = if frozen_stages == 0 && middle.is_none() { convs } else { convs / 2 };
        assert!(compared >= trainable, "{what}: {compared} of {convs} convolutions had gradients");
        for (i, (a, b)) in fast.3.into_iter().zip(reference.3).enumerate() {
            let d = rel_diff(a, b);
            assert!(d < 1e-4, "{what}: running statistic {i} differs by {d}");
        }
    }
}

impl ResNet {
    /// `self` with the freezing of `other` (frozen stem and stages), for copies made through
    /// a record (which does not carry it).
    fn with_freeze_of(mut self, other: &ResNet) -> ResNet {
        if !other.conv1.weight.val().is_require_grad() {
            self.conv1 = self.conv1.clone().freeze();
            self.bn1 = self.bn1.clone().freeze();
        }
        for (s, o) in self.layers.iter_mut().zip(&other.layers) {
            if !o.blocks[0].conv1.weight.val().is_require_grad() {
                *s = s.clone().freeze();
            }
        }
        self
    }
}

/// The training path's features and gradients are bit-identical on 1 and 3 threads (every
/// sum has an order fixed by the shapes).
#[test]
fn training_step_does_not_depend_on_the_thread_count() {
    let device = Device::flex().autodiff();
    device.seed(8);
    let base = perturbed(ResnetDepth::R18, &device);
    let (x, r) = (random([3, 3, 41, 38], &device), random([3, 512], &device));
    let run = |threads: usize| {
        let net = perturbed(ResnetDepth::R18, &device).load_record(base.clone().into_record());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let (f, convs, affine, _) = pool.install(|| one_step(&net, x.clone(), r.clone(), true));
        let bits = |t: Vec<f32>| t.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let mut all = bits(f.into_data().try_into_vec::<f32>().unwrap());
        for g in convs.into_iter().flatten() {
            all.extend(bits(g.into_data().try_into_vec::<f32>().unwrap()));
        }
        for g in affine.into_iter().flatten() {
            all.extend(bits(g.into_data().try_into_vec::<f32>().unwrap()));
        }
        all
    };
    assert!(run(1) == run(3), "the bits differ between 1 and 3 threads");
}
