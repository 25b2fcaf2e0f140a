//! Pure-Rust evaluation and search for embeddings: exact k-nearest
//! neighbours, retrieval, clustering and verification metrics, few-shot
//! episodes and one-shot trials (the scorer of the Omniglot benchmark).
//!
//! No deep-learning framework is involved: inputs are borrowed row-major
//! `f32`/`f64` buffers ([`Embeddings`]) with `i64` labels ([`Labelled`]), so
//! embeddings from Burn, from `.npy` files or from anywhere else are
//! evaluated the same way.
//!
//! # One call
//!
//! ```
//! use margin_eval::{evaluate, Embeddings, EvalConfig, Labelled};
//! let data = [0.0f32, 0.0, 0.1, 0.0, 5.0, 5.0, 5.1, 5.0];
//! let labels = [7i64, 7, 9, 9];
//! let set = Labelled::new(Embeddings::new("E.npy", &data, 2)?, "L.npy", &labels)?;
//! let report = evaluate(&set, None, &EvalConfig::default())?;
//! assert_eq!(report.retrieval.map_at_r, 1.0);
//! // `report` is serde-serialisable: JSON with ROC points and histograms.
//! # Ok::<(), margin_eval::EvalError>(())
//! ```
//!
//! [`evaluate`] returns an [`EvalReport`]: [`RetrievalReport`] (P@1, P@k,
//! R@1/2/4/8, R-Precision, MAP@R, MRR), [`ClusteringReport`] (NMI, AMI),
//! [`VerificationReport`] (AUC, EER, TAR@FAR, best accuracy, thinned ROC
//! points, same- vs different-class distance [`Histogram`]) and
//! [`FewShotReport`]. Each part is also available on its own
//! ([`retrieval`](fn@retrieval), [`clustering`](fn@clustering), [`verification`](fn@verification),
//! [`verification_metrics`] on raw pair scores, [`few_shot`](fn@few_shot), [`knn`](fn@knn),
//! [`one_shot_accuracy`]).
//!
//! # Design
//!
//! - **Exact search by tiled GEMM** ([`knn`](mod@knn)). Every distance is an
//!   affine function of an inner product ([`distance`]), so the work is the
//!   matrix product `Q·Rᵀ`, done tile by tile with the `gemm` crate. Each
//!   rayon task owns a block of queries and a `query_block × reference_block`
//!   score buffer, which it streams through per-query bounded heaps. Memory is
//!   the tiles plus the `n × k` result — never the `n × m` distance matrix —
//!   and the result does not depend on the number of threads.
//! - **Determinism.** Ties are broken by the smaller reference index, the
//!   query's own row is excluded by index, and every random choice (k-means++,
//!   pair samples, episodes) comes from a seeded `ChaCha8` stream drawn
//!   sequentially, so results depend on the seed alone.
//! - **Exact MRR.** The rank of the first relevant reference is taken from the
//!   top k when it is there and otherwise counted over the full ranking with
//!   the same scores ([`rank`]), so MRR is not truncated at k.
//! - **Definitions** follow pytorch-metric-learning's `AccuracyCalculator`
//!   (MAP@R, R-Precision, P@1, lone-query handling, NMI/AMI via
//!   scikit-learn's formulas) where it has the metric; each module cites its
//!   sources.
//! - **Never a fake number.** TAR at a FAR the impostor count cannot resolve
//!   is [`TarAtFar::NotEstimable`]; sections the data cannot support are
//!   listed in [`EvalReport::skipped`]; bad input is a typed [`EvalError`]
//!   naming the input (and row), never a panic.
//! - **Precision.** Search runs in the input's type (`f32` or `f64`);
//!   metrics, pair distances and k-means centroids accumulate in `f64`.
//!
//! # What this crate holds
//!
//! Metrics — retrieval, clustering, verification, `intent` (1-NN / centroid accuracy,
//! out-of-scope AUROC / FPR@95%TPR / accuracy at a validation-chosen threshold) and
//! `correlation` (Spearman) — few-shot episodes, one-shot trial scoring, and exact kNN by tiled
//! GEMM: the one kNN of the workspace (margin-search builds on it). Depends on margin-linalg
//! only; no Burn, and no image, archive or compression crate.
#![warn(missing_docs)]

pub mod clustering;
pub mod correlation;
pub mod data;
pub mod distance;
pub mod error;
pub mod fewshot;
pub mod intent;
pub mod knn;
pub mod mutual_info;
pub mod oneshot;
pub mod pairs;
pub mod rank;
pub mod report;
pub mod retrieval;


pub mod verification;

pub use clustering::{ClusteringConfig, ClusteringReport, KMeans, clustering, kmeans};
pub use data::{ClassIndex, Embeddings, Labelled};
pub use distance::Distance;
pub use error::{EvalError, Result};
pub use fewshot::{FewShotConfig, FewShotReport, few_shot};
pub use knn::{KnnOptions, Neighbors, knn, knn_with};
pub use oneshot::{OneShotReport, OneShotRun, one_shot_accuracy};
pub use pairs::{
    Histogram, Pairs, VerificationReport, histogram, make_pairs, pair_values, verification,
};
pub use report::{EvalConfig, EvalReport, Skipped, Timings, evaluate, evaluate_slices};
pub use retrieval::{
    RecallAt, RetrievalConfig, RetrievalReport, retrieval, retrieval_with_neighbors,
};
pub use margin_linalg::Real;
pub use verification::{
    Polarity, RocPoint, TarAtFar, VerificationConfig, VerificationMetrics, roc_curve,
    verification_metrics,
};

/// Sizes the global rayon pool every parallel function of this crate uses
/// (default: one thread per core). Call it before any evaluation.
///
/// # Errors
/// [`EvalError::InvalidParameter`] for 0 threads or when the pool was already
/// started.
pub fn init_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(error::invalid("threads", "must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| error::invalid("threads", e.to_string()))
}
