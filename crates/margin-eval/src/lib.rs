//! margin-eval (docs to come)
#![warn(missing_docs)]

pub mod data;
pub mod distance;
pub mod error;
pub mod knn;
mod rank;
pub mod retrieval;
pub mod scalar;
mod topk;

pub use data::{ClassIndex, Embeddings, Labelled};
pub use distance::Distance;
pub use error::{EvalError, Result};
pub use knn::{KnnOptions, Neighbors, knn, knn_with};
pub use retrieval::{RecallAt, RetrievalConfig, RetrievalReport, retrieval, retrieval_with_neighbors};
pub use scalar::Real;
