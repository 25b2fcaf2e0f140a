//! The shared core of the losses with per-class parameters (class weights, proxies,
//! centres): ArcFace / CosFace / normalised softmax, Proxy-Anchor, Proxy-NCA, SoftTriple.
//!
//! Each of them is a function of one matrix, the cosine similarity `S = x̂ Ŵᵀ` of the
//! L2-normalised embeddings and the L2-normalised parameter rows — one GEMM, `[B, d] ×
//! [d, M]`, on the backend (autodiff tracks it). The rest is `O(B·M)` and runs on the
//! host in `f64` ([`HostSim`]): each loss computes its value `L` and `G = ∂L/∂S` there,
//! in closed form, and [`attach`] puts `L` on the graph as `Σ S ⊙ G − (its own value) + L`,
//! so one backward pass gives `∂L/∂x` and `∂L/∂W` through the GEMM (two more GEMMs) and the
//! normalisations. This is the fused host path of the other losses (one matrix, the
//! gradient of the loss with respect to it written once) applied to `[B, M]`; the naive
//! loops in the tests compute the loss from the raw rows instead, and central differences
//! check `G`'s closed forms through the whole chain.
//!
//! Also here: the check that labels are class indices `0..C` (the parameters are per
//! class), and the seeded initialisers of the parameters (PML's defaults, drawn from an
//! explicit RNG, so a run is reproducible; [`param_rng`]: the one stream a seed gives them).

use burn::module::Param;
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Resolved;
use crate::error::{MarginError, Result};
use crate::input::{check_embeddings, check_labels, constant, to_host};
use crate::{Batch, Tuples, l2_normalize};

/// A labelled batch as the class-parameter losses take it: embeddings and labels, no
/// reference set, `Tuples::All` (the parameters replace tuples).
pub(crate) fn labelled_rows<'a>(what: &str, batch: Batch<'a>, tuples: &Tuples<'_>) -> Result<(Tensor<2>, &'a [i64])> {
    if !matches!(tuples, Tuples::All) {
        return Err(MarginError::Unsupported(format!("{what} compares each row with its class parameters, not with tuples: Tuples::All only")));
    }
    match batch.resolve()? {
        Resolved::Labelled(b) if b.reference.is_none() => Ok((b.embeddings, b.labels)),
        Resolved::Labelled(_) => Err(MarginError::Unsupported(format!("{what} compares rows with its own parameters: no reference set"))),
        _ => Err(MarginError::Unsupported(format!("{what} takes a labelled batch (Batch::labelled)"))),
    }
}

/// Checks the embeddings against the parameters (`[M, d]` rows) and the labels against
/// `num_classes`; the labels as class indices.
pub(crate) fn check_inputs(x: &Tensor<2>, labels: &[i64], params: &Tensor<2>, params_name: &'static str, num_classes: usize) -> Result<Vec<usize>> {
    check_embeddings("embeddings", x)?;
    check_labels("embeddings", x, "labels", labels)?;
    crate::input::check_same_dim("embeddings", x, params_name, params)?;
    if x.dtype() != params.dtype() {
        return Err(MarginError::Unsupported(format!(
            "embeddings are {:?} but the loss's {params_name} are {:?}: build the loss in the embeddings' float type",
            x.dtype(),
            params.dtype()
        )));
    }
    labels
        .iter()
        .enumerate()
        .map(|(position, &label)| match usize::try_from(label) {
            Ok(c) if c < num_classes => Ok(c),
            _ => Err(MarginError::LabelOutOfRange { input: "labels", position, label, num_classes }),
        })
        .collect()
}

/// The cosine similarity of every embedding with every parameter row, on the graph,
/// and its host copy.
///
/// # Shapes
/// - `x`: `[B, d]`, `params`: `[M, d]` → `[B, M]` (row-major host copy)
pub(crate) fn cosine_matrix(x: Tensor<2>, params: Tensor<2>) -> (Tensor<2>, HostSim) {
    let [b, _] = x.dims();
    let m = params.dims()[0];
    let s = l2_normalize(x).matmul(l2_normalize(params).transpose());
    let host = HostSim { values: to_host(&s), rows: b, cols: m };
    (s, host)
}

/// A `[B, M]` similarity matrix on the host.
pub(crate) struct HostSim {
    /// Row-major values.
    pub(crate) values: Vec<f64>,
    /// `B`.
    pub(crate) rows: usize,
    /// `M`.
    pub(crate) cols: usize,
}

impl HostSim {
    /// Row `i`.
    pub(crate) fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }
}

/// `L` on the graph of `s` with gradient `grad` (`∂L/∂S`, row-major like `s`):
/// `Σ S ⊙ G − (its own value) + L`, whose value is `L` and whose gradient is `G`.
pub(crate) fn attach(s: Tensor<2>, grad: Vec<f64>, value: f64) -> Tensor<1> {
    let (device, dtype, dims) = (s.device(), s.dtype(), s.dims());
    let g = Tensor::<2>::from_data(TensorData::new(grad, dims), (&device, dtype));
    let dot = s.mul(g).sum();
    (dot.clone() - constant(&dot)).add_scalar(value)
}

/// `log Σ exp(z)` and the softmax of `z` (written into `p`), shifted by the maximum.
pub(crate) fn log_softmax_into(z: &[f64], p: &mut [f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (pi, &zi) in p.iter_mut().zip(z) {
        *pi = (zi - max).exp();
        sum += *pi;
    }
    p.iter_mut().for_each(|pi| *pi /= sum);
    max + sum.ln()
}


/// The generator a seed draws a loss's parameters from: a stream of their own (the seed
/// xor a constant), so they do not depend on what else the seed draws. The one rule for
/// `margin train` (the run's `seed`), `margin loss --seed` and `margin.losses`' `seed=`:
/// the same seed, class count and dimension give the same parameters everywhere.
pub fn param_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ 0x6c6f_7373_5f70_6172)
}

/// How a parameter matrix is drawn (PML's `weight_init_func` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Init {
    /// `N(0, std²)` (torch's `normal_`: std 1; `kaiming_normal_`: `√2 / √fan`).
    Normal { std: f64 },
    /// `U(−bound, bound)` (`kaiming_uniform_(a = √5)`: `1 / √fan_in`).
    Uniform { bound: f64 },
}

/// A `[rows, cols]` parameter drawn from `rng` by `init`, in `f32` on `device`.
pub(crate) fn init_param(rng: &mut dyn RngCore, init: Init, rows: usize, cols: usize, device: &Device) -> Param<Tensor<2>> {
    let n = rows * cols;
    let values: Vec<f32> = match init {
        Init::Normal { std } => (0..n).map(|_| (std * standard_normal(rng)) as f32).collect(),
        Init::Uniform { bound } => (0..n).map(|_| rng.random_range(-bound..bound) as f32).collect(),
    };
    Param::from_tensor(Tensor::from_data(TensorData::new(values, [rows, cols]), (device, DType::F32)))
}

/// One standard normal draw (Box–Muller; `1 − u` keeps the logarithm finite).
fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Checks given parameter values: `[rows, cols]`, finite; as a trainable parameter.
pub(crate) fn given_param(name: &'static str, values: Tensor<2>, rows: usize, cols: usize) -> Result<Param<Tensor<2>>> {
    if values.dims() != [rows, cols] {
        return Err(MarginError::ShapeMismatch { input: name, got: values.dims().to_vec(), expected_from: "the loss's configuration", expected: vec![rows, cols] });
    }
    check_embeddings(name, &values)?;
    Ok(Param::from_tensor(values))
}

/// Checks the class count and embedding dimension of a configuration.
pub(crate) fn check_sizes(num_classes: usize, embedding_dim: usize) -> Result<()> {
    crate::check::size("num_classes", num_classes, crate::check::MAX_BATCH)?;
    crate::check::size("embedding_dim", embedding_dim, crate::check::MAX_DIM)?;
    Ok(())
}
