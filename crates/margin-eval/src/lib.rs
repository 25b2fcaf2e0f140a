//! margin-eval (docs to come)
#![warn(missing_docs)]

pub mod clustering;
pub mod data;
pub mod distance;
pub mod error;
pub mod fewshot;
pub mod knn;
pub mod mutual_info;
pub mod omniglot;
pub mod pairs;
mod rank;
pub mod report;
pub mod retrieval;
pub mod scalar;
mod topk;
pub mod verification;

pub use clustering::{ClusteringConfig, ClusteringReport, KMeans, clustering, kmeans};
pub use data::{ClassIndex, Embeddings, Labelled};
pub use distance::Distance;
pub use error::{EvalError, Result};
pub use fewshot::{FewShotConfig, FewShotReport, few_shot};
pub use knn::{KnnOptions, Neighbors, knn, knn_with};
pub use omniglot::{OmniglotOneShot, OneShotImage, OneShotReport, OneShotRun};
pub use pairs::{Histogram, Pairs, VerificationReport, histogram, make_pairs, pair_values, verification};
pub use report::{EvalConfig, EvalReport, Skipped, Timings, evaluate};
pub use retrieval::{RecallAt, RetrievalConfig, RetrievalReport, retrieval, retrieval_with_neighbors};
pub use scalar::Real;
pub use verification::{
    Polarity, RocPoint, TarAtFar, VerificationConfig, VerificationMetrics, roc_curve, verification_metrics,
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
