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
//!
//! ## What this crate holds
//!
//! Distances; losses (one `forward` per loss; InfoNCE / NT-Xent over label-free
//! `Batch::in_batch_pairs`; the losses with per-class parameters as Burn Modules — ArcFace /
//! CosFace / normalised softmax, Proxy-Anchor, Proxy-NCA, SoftTriple — over one
//! embedding–parameter cosine GEMM, `loss/class_sim.rs`); miners; reducers; the P×K sampler;
//! cross-batch memory; the naive references. **No file formats.**
//!
//! ## The one entry point
//!
//! `loss.forward(Batch::labelled(emb, &labels), Tuples::mined(&miner, &mut rng))` through
//! `MetricLoss`. `Batch`: labelled (+ reference set, XBM self map), aligned triplets or pairs;
//! `Tuples`: All | Mined(Mining) | Triplets | Pairs. The planner takes the fused O(B²) path (it
//! never lists tuples) when the loss/miner pair allows, else the weighted path on the loss's own
//! distance matrix; it returns `LossOutput { loss, stats, mined }`.
//!
//! Fused path: the loss is `L = Σ W ⊙ D + c` once the active set is known. The distance matrix is
//! computed without a graph, `W` is planned on the host (per-anchor sort + prefix sums,
//! O(B² log B) time, O(B²) memory), and `∂L/∂x` is written out (one GEMM) and attached as
//! `Σ x ⊙ g − (its own value) + L`. On `flex` everything up to that attachment runs on the host
//! (`loss/host_rows.rs`) inside one hand-off to rayon's pool; other devices keep the same
//! formulas on the backend (tested equal). Host passes are vectorised (`avx2_dispatch!`), each
//! writing its buffer once, uninitialised.
//!
//! ## Adding a miner
//!
//! One file in `crates/margin/src/miner/` (the struct with its PML parameters and defaults,
//! `mine_input`, its `AnyMiner` impl), one line in the `miners!` list of `miner/config.rs` (which
//! generates the `MinerConfig` variant, its `kind` tag, `NAMES` and the dispatch), `mod` +
//! `pub use` in `miner/mod.rs`, docs. Worked example, the distance-weighted miner as it stands:
//! `miner/distance_weighted.rs` (the miner, 130 lines), `miner/config.rs` (one line),
//! `miner/mod.rs` (two lines) — 3 files. The config file and `margin loss --miner-table '…'`
//! parse it with no change; for the per-miner flags of `margin loss` it gets a variant in the
//! CLI's `MinerKind` (a test compares that list with `NAMES`).
//!
//! ## Adding a loss
//!
//! One file in `crates/margin/src/loss/` implementing `MetricLoss::forward(Batch, Tuples)` (plan
//! its fused path there; a gathering oracle in `reference/gathered.rs`, a naive loop in
//! `reference.rs`), a `LossSpec` variant in `margin-train/src/loss_spec.rs`, a PML golden value
//! and a central-difference gradient check. Label-free pair batches (anchor, positive; in-batch
//! negatives) are a new `Batch` constructor.
//!
//! Losses with learnable parameters (proxies, class weights: ArcFace, Proxy-Anchor) are Burn
//! Modules implementing the same trait (`Config` → `init(rng, device)` or `init_with(params)` →
//! Module; parameters `[M, d]`, one row per class or centre): a loss that is a function of the
//! cosine matrix `[B, M]` of embeddings and parameter rows gets it from
//! `class_sim::cosine_matrix` (one GEMM), computes its value and `∂L/∂S` on the host and attaches
//! them (`class_sim::attach`). Worked example: `loss/proxy_nca.rs`, pinned by
//! `tests/param_losses.rs` (PML golden for `∂x` and `∂W`, naive loops in
//! `tests/param_losses/reference.rs`, central differences of both). Beyond this crate: its
//! `LossSpec` variant, an arm in margin-train's `ParamLoss`, a `LossKind` variant and its flags in
//! `margin-cli/src/cmd/loss_param.rs` (a test checks the `--loss` values against `LossSpec`), and
//! a class in margin-py's `param_losses.rs` / `losses.py`.

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
