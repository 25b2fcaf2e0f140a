//! # margin — deep metric learning on Burn
//!
//! Distances, triplet and contrastive losses, reducers (and, in later modules,
//! miners and samplers) that compose along pytorch-metric-learning's axes —
//! distance × loss × reducer × miner — sharing one currency: index tuples
//! ([`Triplets`], [`Pairs`]) and per-element losses tagged by kind.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use margin::{Batch, Distance, Reducer, TripletMarginLossConfig, Tuples};
//!
//! let device = Device::flex().autodiff();
//! let embeddings = Tensor::<2>::from_data(
//!     [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], &device,
//! ).require_grad();
//! let labels = [0, 0, 1, 1];
//! let loss = TripletMarginLossConfig::new()
//!     .with_margin(0.2)
//!     .with_distance(Distance::euclidean_normalized())
//!     .with_reducer(Reducer::AvgNonZero)
//!     .init()?;
//! let out = loss.forward(Batch::labelled(embeddings.clone(), &labels), Tuples::All)?;   // all valid triplets
//! let grads = out.loss.backward();
//! assert!(embeddings.grad(&grads).is_some());
//! println!("loss {} with {:.0}% of triplets active", out.stats.loss, 100.0 * out.stats.active_fraction);
//! # Ok::<(), margin::MarginError>(())
//! ```
//!
//! ## Conventions are types
//!
//! - A distance knows its [`Direction`]: losses are written once against
//!   [`Direction::violation`] and are right for distances and similarities alike.
//! - Squared vs unsquared Euclidean is [`Power`], so a margin is never compared
//!   against the wrong units by accident.
//! - An explicit pair's polarity is [`PairPolarity`], never a 0/1.
//! - The contrastive penalty is [`ContrastiveForm`] (PML's linear or Hadsell's squared).
//!
//! ## Errors and degenerate batches
//!
//! Every entry point validates its input and returns [`MarginError`] naming the
//! input and its shape: NaN/Inf, wrong label count, `D = 0`, mismatched shapes,
//! out-of-range tuples. A batch without any valid tuple gives a zero loss that
//! is still attached to the autodiff graph: backward runs and gives zero gradients.
//!
//! ## Reference implementations
//!
//! [`reference`] holds plain `f64` loops for every loss — slow and obviously
//! right — against which the tensor code is tested.

#![warn(missing_docs)]

pub mod alloc;
pub mod check;
mod direction;
mod distance;
mod error;
pub mod flex_element;
mod input;
pub mod loss;
pub mod miner;
mod pool;
mod reducer;
pub mod reference;
pub mod sampler;
mod tuples;
pub mod xbm;

/// The Burn version margin is built on, re-exported so users and the CLI share it.
pub use burn;
pub use direction::Direction;
pub use distance::{
    CosineSimilarity, Distance, DotProductSimilarity, LpDistance, NORM_EPS, Power, SQRT_EPS, l2_normalize,
};
pub use error::{MarginError, Result};
pub use input::{constant, to_host};
pub use loss::{
    Batch, ContrastiveForm, ContrastiveLoss, ContrastiveLossConfig, InfoNceLoss, LossOutput, LossStats, MetricLoss, Mining,
    ReferenceSet, TripletMarginLoss, TripletMarginLossConfig, Tuples,
};
pub use loss::{
    ArcFaceLossConfig, CosFaceLossConfig, MarginSoftmaxLoss, NormalizedSoftmaxLossConfig, ProxyAnchorLoss,
    ProxyAnchorLossConfig, ProxyNcaLoss, ProxyNcaLossConfig, SoftTripleLoss, SoftTripleLossConfig, TargetMargin, param_rng,
};
pub use reducer::{ElementKind, KindPooling, LossTerms, PerElementLoss, Reducer};
pub use tuples::{PairPolarity, Pairs, Triplets};
pub use miner::{
    BatchEasyHardMiner, BatchHardMiner, DistanceWeightedMiner, FaceNetSemiHardMiner, Mined, MinedPairs,
    MinedTriplets, MinerConfig, MinerStats, MiningInput, MiningStrategy, MultiSimilarityMiner, PairMarginMiner,
    SemiHardFallback, TripletMarginMiner, TripletType, ValueRange,
};
