//! `margin.evaluate`: the full report of `margin eval` (retrieval, clustering, verification,
//! few-shot) on numpy arrays, as the JSON document `margin eval --json` prints (the Python
//! layer turns it into a dict). The defaults are the CLI's, so the same arrays give the same
//! numbers; the configuration is built here exactly as `margin-cli/src/cmd/eval.rs` builds it.

use margin_eval::{
    Distance, Embeddings, EvalConfig, FewShotConfig, Labelled, RetrievalConfig, VerificationConfig,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{Matrix, label_slice, labels, matrix, slice, to_f64};
use crate::errors;

/// What `margin eval`'s flags set, with the CLI's defaults.
struct Settings {
    distance: Distance,
    k: Option<usize>,
    pairs: usize,
    episodes: Option<(usize, usize, usize)>,
    episode_queries: usize,
    seed: u64,
    clustering: bool,
}

impl Settings {
    fn config(&self) -> EvalConfig {
        let (n, k, c) = self.episodes.unwrap_or((5, 1, 1000));
        EvalConfig {
            distance: self.distance,
            retrieval: RetrievalConfig { k: self.k, ..Default::default() },
            clustering: self.clustering.then(|| margin_eval::ClusteringConfig { seed: self.seed, ..Default::default() }),
            verification: Some(VerificationConfig { max_pairs: self.pairs, seed: self.seed, ..Default::default() }),
            few_shot: Some(FewShotConfig { n_way: n, k_shot: k, n_query: self.episode_queries, episodes: c, seed: self.seed }),
        }
    }
}

/// Parses a distance name (the conventions' vocabulary).
pub fn distance(name: &str) -> PyResult<Distance> {
    name.parse::<Distance>().map_err(errors::eval)
}

fn positive(name: &str, v: usize) -> PyResult<usize> {
    if v == 0 {
        return Err(PyValueError::new_err(format!("invalid {name}: must be at least 1")));
    }
    Ok(v)
}

/// The report as JSON (`margin eval --json`'s document).
#[pyfunction]
#[pyo3(signature = (embeddings, labels_, reference=None, reference_labels=None, distance_="euclidean", k=None, pairs=1_000_000, episodes=None, episode_queries=15, seed=0, clustering=true))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_json(
    py: Python<'_>,
    embeddings: &Bound<'_, PyAny>,
    labels_: &Bound<'_, PyAny>,
    reference: Option<&Bound<'_, PyAny>>,
    reference_labels: Option<&Bound<'_, PyAny>>,
    distance_: &str,
    k: Option<usize>,
    pairs: usize,
    episodes: Option<(usize, usize, usize)>,
    episode_queries: usize,
    seed: u64,
    clustering: bool,
) -> PyResult<String> {
    if let Some(k) = k {
        positive("k", k)?;
    }
    if let Some((n, kk, c)) = episodes {
        positive("episodes (N-way)", n)?;
        positive("episodes (K-shot)", kk)?;
        positive("episodes (count)", c)?;
    }
    let settings = Settings {
        distance: distance(distance_)?,
        k,
        pairs: positive("pairs", pairs)?,
        episodes,
        episode_queries: positive("episode_queries", episode_queries)?,
        seed,
        clustering,
    };
    let q = matrix(embeddings, "embeddings")?;
    let ql = labels(labels_, "labels")?;
    let r = match (reference, reference_labels) {
        (Some(r), Some(rl)) => Some((matrix(r, "reference")?, labels(rl, "reference_labels")?)),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("reference and reference_labels go together: give both or neither")),
    };
    let config = settings.config();
    let qls = label_slice(&ql);
    let rls = r.as_ref().map(|(_, l)| label_slice(l));
    let all_f32 = matches!(q, Matrix::F32(_)) && r.as_ref().is_none_or(|(m, _)| matches!(m, Matrix::F32(_)));
    let report = if all_f32 {
        let Matrix::F32(qa) = &q else { unreachable!() };
        let qs = slice(qa);
        let rs = r.as_ref().map(|(m, _)| match m {
            Matrix::F32(a) => slice(a),
            Matrix::F64(_) => unreachable!(),
        });
        let (qd, rd) = (q.shape().1, r.as_ref().map_or(0, |(m, _)| m.shape().1));
        py.detach(|| run(qs, qd, qls, rs.map(|v| (v, rd, rls.unwrap_or_default())), &config))
    } else {
        let qv = to_f64(&q);
        let rv = r.as_ref().map(|(m, _)| to_f64(m));
        let (qd, rd) = (q.shape().1, r.as_ref().map_or(0, |(m, _)| m.shape().1));
        py.detach(|| run(&qv, qd, qls, rv.as_deref().map(|v| (v, rd, rls.unwrap_or_default())), &config))
    }
    .map_err(errors::eval)?;
    if episodes.is_some() && report.few_shot.is_none() {
        let why = report.skipped.iter().find(|s| s.section == "few_shot").map_or("", |s| s.reason.as_str());
        return Err(PyValueError::new_err(format!("the requested few-shot episodes cannot be drawn: {why}")));
    }
    serde_json::to_string(&report).map_err(|e| PyValueError::new_err(format!("cannot serialise the report: {e}")))
}

type Input<'a, T> = (&'a [T], usize, &'a [i64]);

fn run<T: margin_eval::Real>(
    q: &[T],
    qd: usize,
    ql: &[i64],
    r: Option<Input<T>>,
    config: &EvalConfig,
) -> margin_eval::Result<margin_eval::EvalReport> {
    let qs = Labelled::new(Embeddings::new("embeddings", q, qd)?, "labels", ql)?;
    let rs = match r {
        Some((v, d, l)) => Some(Labelled::new(Embeddings::new("reference", v, d)?, "reference_labels", l)?),
        None => None,
    };
    margin_eval::evaluate(&qs, rs.as_ref(), config)
}
