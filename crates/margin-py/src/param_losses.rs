//! The losses with class parameters on numpy: `margin.losses.ArcFaceLoss`, `CosFaceLoss`,
//! `NormalizedSoftmaxLoss`, `ProxyAnchorLoss`, `ProxyNCALoss` and `SoftTripleLoss` call
//! [`param_loss`] (value, `∂/∂embeddings`, `∂/∂params`, stats) and [`param_init`] (the
//! parameters a seed draws).
//!
//! The losses are margin's Burn Modules, built here from host arrays with `init_with`, run
//! through the one entry point (`forward(Batch::labelled, Tuples::All)`: the cosine matrix of
//! embeddings and parameters in one GEMM, the loss and its gradient w.r.t. that matrix on
//! the host) and one backward pass, on the flex CPU backend — the code `margin train` and
//! `margin loss` run. Parameters are in margin's layout, `[C·K, d]` (PML's `W` / `fc`
//! transposed; its proxies as they are). A seed draws them with margin's initialisers
//! (PML's defaults) from [`margin::param_rng`], so `seed=N` gives the parameters a
//! `margin train` run with `seed = N` starts from, for the same classes and dimension.
//! Everything Burn touches is built inside the GIL-free closure from plain vectors.

use margin::burn::tensor::{DType, Device, Tensor, TensorData};
use margin::{
    ArcFaceLossConfig, CosFaceLossConfig, LossOutput, MetricLoss, NormalizedSoftmaxLossConfig, ProxyAnchorLossConfig, ProxyNcaLossConfig,
    SoftTripleLossConfig,
};
use numpy::IntoPyArray;
use numpy::ndarray::Array2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{Matrix, label_slice, labels, matrix, slice};
use crate::errors;

fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// The loss settings, as the Python classes pass them (PML's defaults filled in there).
#[derive(FromPyObject, Clone, Debug)]
pub struct ParamSpec {
    kind: String,
    num_classes: usize,
    embedding_size: usize,
    margin: f64,
    scale: f64,
    temperature: f64,
    alpha: f64,
    softmax_scale: f64,
    centers_per_class: usize,
    la: f64,
    gamma: f64,
}

/// Where the parameters come from.
enum Source<'a> {
    /// Drawn from the seed's stream, `f32`, on flex.
    Draw(&'a mut rand_chacha::ChaCha8Rng),
    /// Given (their dtype and device are the loss's).
    Given(Tensor<2>),
}

/// The loss of `spec` and its parameter tensor.
fn build(spec: &ParamSpec, src: Source<'_>) -> PyResult<(Box<dyn MetricLoss>, Tensor<2>)> {
    let (c, d) = (spec.num_classes, spec.embedding_size);
    macro_rules! make {
        ($cfg:expr, $field:ident) => {{
            let loss = match src {
                Source::Draw(rng) => $cfg.init(rng, &Device::flex()),
                Source::Given(values) => $cfg.init_with(values),
            }
            .map_err(errors::margin)?;
            let params = loss.$field.val();
            (Box::new(loss) as Box<dyn MetricLoss>, params)
        }};
    }
    Ok(match spec.kind.as_str() {
        "arcface" => make!(ArcFaceLossConfig::new(c, d).with_margin_degrees(spec.margin).with_scale(spec.scale), weights),
        "cosface" => make!(CosFaceLossConfig::new(c, d).with_margin(spec.margin).with_scale(spec.scale), weights),
        "normalized_softmax" => make!(NormalizedSoftmaxLossConfig::new(c, d).with_temperature(spec.temperature), weights),
        "proxy_anchor" => make!(ProxyAnchorLossConfig::new(c, d).with_margin(spec.margin).with_alpha(spec.alpha), proxies),
        "proxy_nca" => make!(ProxyNcaLossConfig::new(c, d).with_softmax_scale(spec.softmax_scale), proxies),
        "soft_triple" => make!(
            SoftTripleLossConfig::new(c, d).with_centers_per_class(spec.centers_per_class).with_la(spec.la).with_gamma(spec.gamma).with_margin(spec.margin),
            centers
        ),
        other => return Err(value_err(format!("invalid loss kind {other:?}"))),
    })
}

/// The parameters `seed` draws for `spec`: `[C·K, d]` float32, margin's initialiser of the
/// loss (PML's default) from [`margin::param_rng`] — a `margin train` run's draw.
#[pyfunction]
pub fn param_init<'py>(py: Python<'py>, spec: ParamSpec, seed: u64) -> PyResult<Bound<'py, PyAny>> {
    let (values, rows, dim) = py.detach(|| -> PyResult<(Vec<f32>, usize, usize)> {
        let mut rng = margin::param_rng(seed);
        let (_, params) = build(&spec, Source::Draw(&mut rng))?;
        let [rows, dim] = params.dims();
        Ok((margin::to_host(&params).into_iter().map(|v| v as f32).collect(), rows, dim))
    })?;
    Ok(Array2::from_shape_vec((rows, dim), values).expect("M × d").into_pyarray(py).into_any())
}

/// What one call computed.
struct Computed {
    value: f64,
    grad: Vec<f64>,
    param_grad: Vec<f64>,
    stats: String,
}

fn finite_grad(g: &[f64], dim: usize, what: &str, dtype: DType) -> PyResult<()> {
    match g.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(value_err(format!("{what}: the gradient of row {} is {} (too large for {dtype:?}; pass float64)", i / dim.max(1), g[i]))),
        None => Ok(()),
    }
}

fn compute(spec: &ParamSpec, x: TensorData, params: TensorData, dtype: DType, labels: &[i64]) -> PyResult<Computed> {
    let start = std::time::Instant::now();
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::from_data(x, (&device, dtype)).require_grad();
    let w = Tensor::<2>::from_data(params, (&device, dtype)).require_grad();
    let (loss, w) = build(spec, Source::Given(w))?;
    let out: LossOutput = loss.forward(margin::Batch::labelled(x.clone(), labels), margin::Tuples::All).map_err(errors::margin)?;
    if !out.stats.loss.is_finite() {
        return Err(value_err(format!("embeddings: the loss is {} although every value is finite (pass float64)", out.stats.loss)));
    }
    let grads = out.loss.backward();
    let dim = x.dims()[1];
    let grad = x.grad(&grads).map(|g| margin::to_host(&g)).unwrap_or_default();
    let param_grad = w.grad(&grads).map(|g| margin::to_host(&g)).unwrap_or_default();
    finite_grad(&grad, dim, "embeddings", dtype)?;
    finite_grad(&param_grad, dim, "params", dtype)?;
    #[derive(serde::Serialize)]
    struct Stats<'a> {
        #[serde(flatten)]
        loss: &'a margin::LossStats,
        /// Wall time of the Rust side (tensors in, forward, backward, gradients out).
        seconds: f64,
    }
    let stats = serde_json::to_string(&Stats { loss: &out.stats, seconds: start.elapsed().as_secs_f64() }).map_err(|e| value_err(e.to_string()))?;
    Ok(Computed { value: out.stats.loss, grad, param_grad, stats })
}

fn host(m: &Matrix<'_>) -> (TensorData, DType) {
    let (rows, dim) = m.shape();
    match m {
        Matrix::F32(a) => (TensorData::new(slice(a).to_vec(), [rows, dim]), DType::F32),
        Matrix::F64(a) => (TensorData::new(slice(a).to_vec(), [rows, dim]), DType::F64),
    }
}

fn to_numpy<'py>(py: Python<'py>, values: Vec<f64>, (rows, dim): (usize, usize), dtype: DType) -> Bound<'py, PyAny> {
    let values = if values.is_empty() { vec![0.0; rows * dim] } else { values };
    match dtype {
        DType::F32 => Array2::from_shape_vec((rows, dim), values.into_iter().map(|v| v as f32).collect()).expect("rows × d").into_pyarray(py).into_any(),
        _ => Array2::from_shape_vec((rows, dim), values).expect("rows × d").into_pyarray(py).into_any(),
    }
}

/// `(value, ∂/∂embeddings [B, d], ∂/∂params [C·K, d] (the input's dtype), stats as JSON)`.
#[pyfunction]
pub fn param_loss<'py>(
    py: Python<'py>,
    spec: ParamSpec,
    embeddings: &Bound<'py, PyAny>,
    labels_: &Bound<'py, PyAny>,
    params: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyAny>, Bound<'py, PyAny>, String)> {
    let m = matrix(embeddings, "embeddings")?;
    let p = matrix(params, "params")?;
    let ls = labels(labels_, "labels")?;
    let l = label_slice(&ls);
    let (rows, dim) = m.shape();
    if l.len() != rows {
        return Err(value_err(format!("labels has {} labels but embeddings has {rows} rows", l.len())));
    }
    let ((x, dtype), (w, wdtype)) = (host(&m), host(&p));
    if dtype != wdtype {
        return Err(value_err(format!("params are {wdtype:?} but embeddings are {dtype:?}: pass both in one float type")));
    }
    let shape = p.shape();
    let c = py.detach(|| compute(&spec, x, w, dtype, l))?;
    Ok((c.value, to_numpy(py, c.grad, (rows, dim), dtype), to_numpy(py, c.param_grad, shape, dtype), c.stats))
}
