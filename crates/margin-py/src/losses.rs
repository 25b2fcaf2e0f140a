//! The fused losses on numpy: `margin.losses.TripletMarginLoss` / `ContrastiveLoss` (with a
//! miner) call [`loss`], which runs margin's one entry point `loss.forward(Batch::labelled,
//! Tuples)` on the flex CPU backend — the planner picks the fused O(B²) path where the
//! loss/miner pair allows it, exactly as `margin loss` (`margin-cli/src/cmd/loss.rs`) and
//! training do — then backward, and returns `(value, gradient, stats)`.
//!
//! The batch is copied once into a Burn tensor (Burn owns its buffers); the gradient comes
//! back as a new numpy array of the input's dtype. The miner mines on the loss's distance
//! unless it is given its own (`MinerSpec::build`'s rule in margin-train, repeated here with
//! margin's public `MinerConfig::with_distance` / `has_own_distance`, so this crate does not
//! pull in the trainer).

use margin::burn::tensor::{DType, Device, Tensor, TensorData};
use margin::{ContrastiveForm, ContrastiveLossConfig, Distance, KindPooling, MetricLoss, MinerConfig, Reducer, TripletMarginLossConfig};
use numpy::IntoPyArray;
use numpy::ndarray::Array2;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rand::SeedableRng;

use crate::arrays::{Matrix, label_slice, labels, matrix, slice};
use crate::errors;

fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A distance from its name and normalisation (the conventions' vocabulary).
fn loss_distance(name: &str, normalize: bool) -> PyResult<Distance> {
    Distance::from_name(&name.to_ascii_lowercase().replace('_', "-"), normalize).ok_or_else(|| {
        value_err(format!(
            "invalid distance: {name:?} with normalize={normalize} (expected one of {:?}; cosine always normalises: use dot with normalize=False for raw dot products)",
            Distance::NAMES
        ))
    })
}

fn reducer(name: &str, low: Option<f64>, high: Option<f64>) -> PyResult<Reducer> {
    if name != "threshold" && (low.is_some() || high.is_some()) {
        return Err(value_err("threshold_low/threshold_high only apply with reducer=\"threshold\""));
    }
    Ok(match name {
        "mean" => Reducer::Mean,
        "sum" => Reducer::Sum,
        "avg-non-zero" | "avg_non_zero" => Reducer::AvgNonZero,
        "threshold" => Reducer::Threshold { low, high },
        other => return Err(value_err(format!("invalid reducer: {other:?} (expected mean, sum, avg_non_zero or threshold)"))),
    })
}

/// The miner from its JSON table (`{"kind": ..., params}`), on its own distance or the loss's.
fn miner(table: Option<&str>, own: Option<Distance>, loss: Distance) -> PyResult<Option<MinerConfig>> {
    let Some(table) = table else {
        return match own {
            Some(_) => Err(value_err("miner_distance given without a miner")),
            None => Ok(None),
        };
    };
    let m: MinerConfig = serde_json::from_str(table).map_err(|e| value_err(format!("invalid miner: {e}")))?;
    let m = match own {
        Some(d) if !m.has_own_distance() && d != m.distance() => {
            return Err(value_err(format!("miner {}: this miner mines on L2-normalised Euclidean distances only; remove miner_distance", m.name())));
        }
        Some(d) => m.with_distance(d),
        None => m.with_distance(loss),
    };
    m.validate().map_err(errors::margin)?;
    Ok(Some(m))
}

/// The default parameters of a miner `kind` as a JSON table (for the Python miner classes).
#[pyfunction]
pub fn miner_defaults(kind: &str) -> PyResult<String> {
    let m = MinerConfig::default_for(kind).ok_or_else(|| value_err(format!("unknown miner {kind:?} (expected one of {:?})", MinerConfig::NAMES)))?;
    serde_json::to_string(&m).map_err(|e| value_err(e.to_string()))
}

/// The loss settings, as the Python classes pass them.
#[derive(FromPyObject)]
pub struct LossSpec {
    kind: String,
    margin: f64,
    pos_margin: f64,
    neg_margin: f64,
    form: String,
    pooling: String,
    distance: String,
    normalize: bool,
    reducer: String,
    threshold_low: Option<f64>,
    threshold_high: Option<f64>,
    swap: bool,
    smooth: bool,
    miner: Option<String>,
    miner_distance: Option<String>,
    miner_normalize: bool,
    seed: u64,
}

fn build(spec: &LossSpec) -> PyResult<(Box<dyn MetricLoss + Send + Sync>, Option<MinerConfig>)> {
    let distance = loss_distance(&spec.distance, spec.normalize)?;
    let reducer = reducer(&spec.reducer, spec.threshold_low, spec.threshold_high)?;
    let own = spec.miner_distance.as_deref().map(|d| loss_distance(d, spec.miner_normalize)).transpose()?;
    let miner = miner(spec.miner.as_deref(), own, distance)?;
    let loss: Box<dyn MetricLoss + Send + Sync> = match spec.kind.as_str() {
        "triplet" => Box::new(
            TripletMarginLossConfig::new()
                .with_margin(spec.margin)
                .with_distance(distance)
                .with_swap(spec.swap)
                .with_smooth(spec.smooth)
                .with_reducer(reducer)
                .init()
                .map_err(errors::margin)?,
        ),
        "contrastive" => Box::new(
            ContrastiveLossConfig::new()
                .with_form(match spec.form.as_str() {
                    "linear" => ContrastiveForm::Linear,
                    "squared" => ContrastiveForm::Squared,
                    other => return Err(value_err(format!("invalid form: {other:?} (expected linear or squared)"))),
                })
                .with_pos_margin(spec.pos_margin)
                .with_neg_margin(spec.neg_margin)
                .with_distance(distance)
                .with_reducer(reducer)
                .with_pooling(match spec.pooling.as_str() {
                    "separate" => KindPooling::Separate,
                    "pooled" => KindPooling::Pooled,
                    other => return Err(value_err(format!("invalid pooling: {other:?} (expected separate or pooled)"))),
                })
                .init()
                .map_err(errors::margin)?,
        ),
        other => return Err(value_err(format!("invalid loss kind {other:?}"))),
    };
    Ok((loss, miner))
}

/// What one call computed.
struct Computed {
    value: f64,
    grad: Vec<f64>,
    stats: String,
}

fn compute(loss: &dyn MetricLoss, miner: Option<&MinerConfig>, data: TensorData, dtype: DType, labels: &[i64], seed: u64) -> PyResult<Computed> {
    let start = std::time::Instant::now();
    let device = Device::flex().autodiff();
    let x = Tensor::<2>::from_data(data, (&device, dtype)).require_grad();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let tuples = match miner {
        Some(m) => margin::Tuples::Mined(margin::Mining::new(m, &mut rng)),
        None => margin::Tuples::All,
    };
    let out = loss.forward(margin::Batch::labelled(x.clone(), labels), tuples).map_err(errors::margin)?;
    if !out.stats.loss.is_finite() {
        return Err(value_err(format!(
            "embeddings: the loss is {} although every value is finite: its distances overflow {dtype:?}; scale the embeddings down or pass float64",
            out.stats.loss
        )));
    }
    let grad = x.grad(&out.loss.backward()).map(|g| margin::to_host(&g)).unwrap_or_default();
    if let Some(i) = grad.iter().position(|v| !v.is_finite()) {
        let dim = x.dims()[1];
        return Err(value_err(format!("embeddings: the gradient of row {} is {} (the embeddings are too large for {dtype:?}; pass float64)", i / dim, grad[i])));
    }
    #[derive(serde::Serialize)]
    struct Stats<'a> {
        #[serde(flatten)]
        loss: &'a margin::LossStats,
        miner_stats: Option<margin::MinerStats>,
        /// Wall time of the Rust side (tensor in, forward, backward, gradient out), so a
        /// caller can see what the binding adds around it.
        seconds: f64,
    }
    let seconds = start.elapsed().as_secs_f64();
    let stats = serde_json::to_string(&Stats { loss: &out.stats, miner_stats: out.mined.as_ref().map(|m| *m.stats()), seconds })
        .map_err(|e| value_err(e.to_string()))?;
    Ok(Computed { value: out.stats.loss, grad, stats })
}

/// `(value, gradient [B, d] of the input's dtype, stats as JSON)`.
#[pyfunction]
pub fn loss<'py>(py: Python<'py>, spec: LossSpec, embeddings: &Bound<'py, PyAny>, labels_: &Bound<'py, PyAny>) -> PyResult<(f64, Bound<'py, PyAny>, String)> {
    let (loss, miner) = build(&spec)?;
    let m = matrix(embeddings, "embeddings")?;
    let ls = labels(labels_, "labels")?;
    let l = label_slice(&ls);
    let (rows, dim) = m.shape();
    if l.len() != rows {
        return Err(value_err(format!("labels has {} labels but embeddings has {rows} rows", l.len())));
    }
    let (data, dtype) = match &m {
        Matrix::F32(a) => (TensorData::new(slice(a).to_vec(), [rows, dim]), DType::F32),
        Matrix::F64(a) => (TensorData::new(slice(a).to_vec(), [rows, dim]), DType::F64),
    };
    let seed = spec.seed;
    let c = py.detach(|| compute(loss.as_ref(), miner.as_ref(), data, dtype, l, seed))?;
    let grad = if c.grad.is_empty() { vec![0.0; rows * dim] } else { c.grad };
    let grad: Bound<'py, PyAny> = match dtype {
        DType::F32 => Array2::from_shape_vec((rows, dim), grad.into_iter().map(|v| v as f32).collect()).expect("B × d").into_pyarray(py).into_any(),
        _ => Array2::from_shape_vec((rows, dim), grad).expect("B × d").into_pyarray(py).into_any(),
    };
    Ok((c.value, grad, c.stats))
}
