//! Gradient clipping by the global norm (PyTorch's `clip_grad_norm_`, what transformer
//! fine-tuning uses): all gradients scaled by `max_norm / ‖g‖` when the norm of their
//! concatenation exceeds `max_norm`.
//!
//! Burn's own `GradientClipping::Norm` clips each parameter's gradient by its own norm,
//! which changes the update's direction; the global form keeps it. The norm is summed on
//! the host in f64 in the module's parameter order, each gradient in fixed chunks added in order
//! (the same bits every run and for any thread count).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

/// Elements per partial sum of [`sum_squares`].
const SUM_CHUNK: usize = 1 << 15;

/// Σ g² in f64 without a converted copy of `g`: partial sums over fixed chunks (eight
/// interleaved accumulators each, so the loop is not one long chain of dependent adds), in
/// parallel, added in chunk order — the same bits for any thread count.
fn sum_squares(g: &TensorData) -> f64 {
    fn chunk_sum(v: &[f32]) -> f64 {
        let mut acc = [0.0f64; 8];
        let mut lanes = v.chunks_exact(8);
        for l in &mut lanes {
            for (a, &x) in acc.iter_mut().zip(l) {
                *a += f64::from(x) * f64::from(x);
            }
        }
        let tail: f64 = lanes.remainder().iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        acc.iter().sum::<f64>() + tail
    }
    match g.as_slice::<f32>() {
        Ok(v) => v.par_chunks(SUM_CHUNK).map(chunk_sum).collect::<Vec<f64>>().iter().sum(),
        Err(_) => g.clone().convert::<f64>().iter::<f64>().map(|x| x * x).sum(),
    }
}

/// Reads each gradient through a clone: a copy of its buffer (the gradients stay shared).
struct SumSquares<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl ModuleVisitor for SumSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.total += sum_squares(&g.into_data());
        }
    }
}

/// Reads each gradient in place (CPU): taken out, its buffer handed over by `into_data`,
/// summed and put back, no copy; the same sum as [`SumSquares`].
struct SumSquaresInPlace<'a> {
    grads: &'a mut GradientsParams,
    total: f64,
}

impl ModuleVisitor for SumSquaresInPlace<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let device = g.device();
            let data = g.into_data();
            self.total += sum_squares(&data);
            self.grads.register(param.id, Tensor::<D>::from_data(data, &device));
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The device of `module`'s first parameter (the CPU for a module without any).
fn module_device<M: Module>(module: &M) -> Device {
    module.devices().into_iter().next().unwrap_or_else(Device::flex)
}

/// The global L2 norm of the gradients of `module`'s parameters.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SumSquares { grads, total: 0.0 };
    module.visit(&mut v);
    v.total.sqrt()
}

/// Scales the gradients so their global norm is at most `max_norm`; returns the norm
/// before clipping (logged: a norm far above `max_norm` every step says the learning
/// rate is too high).
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = if crate::device::is_flex(&module_device(module)) {
        let mut v = SumSquaresInPlace { grads, total: 0.0 };
        module.visit(&mut v);
        v.total.sqrt()
    } else {
        global_norm(module, grads)
    };
    if norm > max_norm && norm.is_finite() {
        // PyTorch's factor, with its 1e-6 guard.
        let mut v = Scale { grads, factor: max_norm / (norm + 1e-6) };
        module.visit(&mut v);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Distribution};

    fn grads() -> (Linear, GradientsParams) {
        let device = Device::flex().autodiff();
        device.seed(3);
        let lin: Linear = LinearConfig::new(5, 3).init(&device);
        let x = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device);
        let g = lin.forward(x).powi_scalar(2).sum().mul_scalar(10.0).backward();
        let gp = GradientsParams::from_grads(g, &lin);
        (lin, gp)
    }

    fn host(g: &GradientsParams, lin: &Linear) -> Vec<f64> {
        let w = g.get::<2>(lin.weight.id).unwrap().into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
        let b = g.get::<1>(lin.bias.as_ref().unwrap().id).unwrap().into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
        w.into_iter().chain(b).collect()
    }

    #[test]
    fn clipping_scales_every_gradient_by_one_factor_to_the_max_norm() {
        let (lin, mut g) = grads();
        let before = host(&g, &lin);
        let naive = before.iter().map(|x| x * x).sum::<f64>().sqrt();
        let through_clones = global_norm(&lin, &g);
        let norm = clip_global_norm(&lin, &mut g, 1.0);
        assert_eq!(norm.to_bits(), through_clones.to_bits(), "the in-place sum is the same sum");
        assert!((norm - naive).abs() < 1e-9 * naive, "{norm} vs {naive}");
        assert!(naive > 1.0, "the test needs a norm above the bound: {naive}");
        let after = host(&g, &lin);
        let new_norm = after.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((new_norm - 1.0).abs() < 1e-5, "{new_norm}");
        let f = after[0] / before[0];
        assert!(before.iter().zip(&after).all(|(b, a)| (a - b * f).abs() < 1e-6 * b.abs().max(1e-3)), "one factor: the direction is kept");
        // Under the bound nothing changes.
        let (lin, mut g) = grads();
        let before = host(&g, &lin);
        clip_global_norm(&lin, &mut g, 1e9);
        assert_eq!(before, host(&g, &lin));
    }
}
