//! One call that computes every metric: [`evaluate`].

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::clustering::{ClusteringConfig, ClusteringReport, clustering};
use crate::data::{ClassIndex, Embeddings, Labelled};
use crate::distance::Distance;
use crate::error::{EvalError, Result};
use crate::fewshot::{FewShotConfig, FewShotReport, few_shot};
use crate::pairs::{VerificationReport, verification};
use crate::retrieval::{RetrievalConfig, RetrievalReport, retrieval};
use margin_linalg::Real;
use crate::verification::VerificationConfig;

/// What [`evaluate`] computes. `None` sections are not computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Distance for every section.
    pub distance: Distance,
    /// Retrieval settings (always computed).
    pub retrieval: RetrievalConfig,
    /// k-means NMI/AMI on the query set.
    pub clustering: Option<ClusteringConfig>,
    /// Pair verification on the query set.
    pub verification: Option<VerificationConfig>,
    /// Few-shot episodes on the query set.
    pub few_shot: Option<FewShotConfig>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            distance: Distance::default(),
            retrieval: RetrievalConfig::default(),
            clustering: Some(ClusteringConfig::default()),
            verification: Some(VerificationConfig::default()),
            few_shot: Some(FewShotConfig::default()),
        }
    }
}

/// A section that was configured but could not be computed on this data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// `clustering`, `verification` or `few_shot`.
    pub section: String,
    /// Why (the [`EvalError::NotEnoughData`] message).
    pub reason: String,
}

/// Wall time of each section, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Retrieval (kNN search included).
    pub retrieval: f64,
    /// Clustering.
    pub clustering: f64,
    /// Verification.
    pub verification: f64,
    /// Few-shot.
    pub few_shot: f64,
}

/// Everything [`evaluate`] measured. Serialises to JSON with serde.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Version of margin-eval that produced it.
    pub version: String,
    /// Element type of the embeddings (`f32` or `f64`).
    pub element_type: String,
    /// Distance used.
    pub distance: Distance,
    /// Query rows.
    pub n_queries: usize,
    /// Reference rows (= `n_queries` when the query set is its own reference).
    pub n_references: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Distinct query labels.
    pub n_query_classes: usize,
    /// Largest query class.
    pub largest_query_class: usize,
    /// Retrieval metrics.
    pub retrieval: RetrievalReport,
    /// Clustering metrics, when computed.
    pub clustering: Option<ClusteringReport>,
    /// Verification metrics, ROC and histograms, when computed.
    pub verification: Option<VerificationReport>,
    /// Few-shot accuracy, when computed.
    pub few_shot: Option<FewShotReport>,
    /// Configured sections the data could not support.
    pub skipped: Vec<Skipped>,
    /// Wall time per section.
    pub seconds: Timings,
}

/// Computes retrieval metrics of `query` against `reference` (or against
/// itself, own rows excluded, when `None`), and clustering, verification
/// and few-shot metrics of the query set, as configured.
///
/// # Errors
/// Input errors (dimension mismatch, k too large, …) from any section.
/// A configured clustering/verification/few-shot section that the data
/// cannot support (e.g. a single class, too few classes for N-way) is
/// recorded in [`EvalReport::skipped`] instead of failing the whole call.
pub fn evaluate<T: Real>(
    query: &Labelled<T>,
    reference: Option<&Labelled<T>>,
    config: &EvalConfig,
) -> Result<EvalReport> {
    let mut seconds = Timings::default();
    let mut skipped = Vec::new();
    let d = config.distance;
    let t = Instant::now();
    let retrieval = retrieval(query, reference, d, &config.retrieval)?;
    seconds.retrieval = t.elapsed().as_secs_f64();

    fn section<R>(
        name: &str,
        skipped: &mut Vec<Skipped>,
        secs: &mut f64,
        f: impl FnOnce() -> Result<R>,
    ) -> Result<Option<R>> {
        let t = Instant::now();
        let r = match f() {
            Ok(r) => Some(r),
            Err(EvalError::NotEnoughData { input, reason }) => {
                skipped.push(Skipped {
                    section: name.into(),
                    reason: format!("{input}: {reason}"),
                });
                None
            }
            Err(e) => return Err(e),
        };
        *secs = t.elapsed().as_secs_f64();
        Ok(r)
    }
    let clustering = match &config.clustering {
        Some(c) => section("clustering", &mut skipped, &mut seconds.clustering, || {
            clustering(query, d, c)
        })?,
        None => None,
    };
    let verification = match &config.verification {
        Some(c) => section(
            "verification",
            &mut skipped,
            &mut seconds.verification,
            || verification(query, d, c),
        )?,
        None => None,
    };
    let few_shot = match &config.few_shot {
        Some(c) => section("few_shot", &mut skipped, &mut seconds.few_shot, || {
            few_shot(query, d, c)
        })?,
        None => None,
    };
    let classes = ClassIndex::new(query.labels());
    Ok(EvalReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        element_type: T::NAME.to_string(),
        distance: d,
        n_queries: query.embeddings.rows(),
        n_references: reference.map_or(query.embeddings.rows(), |r| r.embeddings.rows()),
        dim: query.embeddings.dim(),
        n_query_classes: classes.n_classes(),
        largest_query_class: classes.largest(),
        retrieval,
        clustering,
        verification,
        few_shot,
        skipped,
        seconds,
    })
}

/// [`evaluate`] on a plain row-major buffer (`labels.len()` rows of `dim`
/// values) searched against itself: the shortest path from a training loop.
/// Errors name the inputs `"embeddings"` and `"labels"`.
pub fn evaluate_slices<T: Real>(
    embeddings: &[T],
    dim: usize,
    labels: &[i64],
    config: &EvalConfig,
) -> Result<EvalReport> {
    let set = Labelled::new(
        Embeddings::new("embeddings", embeddings, dim)?,
        "labels",
        labels,
    )?;
    evaluate(&set, None, config)
}
