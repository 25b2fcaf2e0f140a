//! The loss section of a run (`[train.loss]`): which loss, its parameters with PML's
//! defaults, and its check against its distance and the miner. Stateless losses are built
//! here ([`LossSpec::build`]); the losses with class parameters are validated here and
//! built by the trainer, which knows the class count ([`crate::param_loss`]).

use serde::{Deserialize, Serialize};

use crate::config::invalid;
use crate::distance_form;
use crate::miner_spec::MinerSpec;
use margin::check;
use margin::{ContrastiveLoss, ContrastiveLossConfig, Distance, InfoNceLoss, MarginError, Reducer, TripletMarginLoss, TripletMarginLossConfig};

type Result<T> = std::result::Result<T, MarginError>;

/// The loss, with its distance and reducer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LossSpec {
    /// Triplet margin loss.
    Triplet {
        /// Margin.
        #[serde(default = "default_margin")]
        margin: f64,
        /// Distance swap.
        #[serde(default)]
        swap: bool,
        /// Soft margin.
        #[serde(default)]
        smooth: bool,
        /// Distance: `"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` (rows
        /// L2-normalised) or `{ kind = "...", normalize = false }`.
        #[serde(default = "Distance::euclidean_normalized", with = "distance_form")]
        distance: Distance,
        /// Reducer.
        #[serde(default = "default_reducer")]
        reducer: Reducer,
    },
    /// Contrastive loss.
    Contrastive {
        /// Positive margin.
        #[serde(default)]
        pos_margin: f64,
        /// Negative margin.
        #[serde(default = "default_neg_margin")]
        neg_margin: f64,
        /// Distance: `"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` (rows
        /// L2-normalised) or `{ kind = "...", normalize = false }`.
        #[serde(default = "Distance::euclidean_normalized", with = "distance_form")]
        distance: Distance,
        /// Reducer.
        #[serde(default = "default_reducer")]
        reducer: Reducer,
    },
    /// ArcFace (additive angular margin; class weights trained with the encoder:
    /// [`crate::param_loss`]). PML's defaults.
    Arcface {
        /// The angular margin in degrees (PML: 28.6).
        #[serde(default = "default_arcface_margin")]
        margin_degrees: f64,
        /// The scale (PML: 64).
        #[serde(default = "default_face_scale")]
        scale: f64,
        /// Learning rate of the class weights (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// CosFace (additive cosine margin; class weights trained with the encoder). PML's defaults.
    Cosface {
        /// The cosine margin (PML: 0.35).
        #[serde(default = "default_cosface_margin")]
        margin: f64,
        /// The scale (PML: 64).
        #[serde(default = "default_face_scale")]
        scale: f64,
        /// Learning rate of the class weights (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// The normalised softmax (class weights trained with the encoder). PML's defaults.
    NormalizedSoftmax {
        /// The temperature (PML: 0.05).
        #[serde(default = "default_softmax_temperature")]
        temperature: f64,
        /// Learning rate of the class weights (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// Proxy-Anchor (one proxy per class, trained with the encoder). PML's defaults.
    ProxyAnchor {
        /// The margin (PML: 0.1).
        #[serde(default = "default_proxy_anchor_margin")]
        margin: f64,
        /// The scale α (PML: 32).
        #[serde(default = "default_proxy_anchor_alpha")]
        alpha: f64,
        /// Learning rate of the proxies (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// Proxy-NCA (one proxy per class, trained with the encoder). PML's defaults.
    ProxyNca {
        /// The softmax scale (PML: 1).
        #[serde(default = "default_one")]
        softmax_scale: f64,
        /// Learning rate of the proxies (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// SoftTriple (`centers_per_class` centres per class, trained with the encoder). PML's defaults.
    SoftTriple {
        /// Centres per class (PML: 10).
        #[serde(default = "default_centers_per_class")]
        centers_per_class: usize,
        /// The scale λ (PML's `la`: 20).
        #[serde(default = "default_soft_triple_la")]
        la: f64,
        /// The centre softmax's temperature γ (PML: 0.1).
        #[serde(default = "default_soft_triple_gamma")]
        gamma: f64,
        /// The margin δ (PML: 0.01).
        #[serde(default = "default_soft_triple_margin")]
        margin: f64,
        /// Learning rate of the centres (default: `train.lr`); follows the schedule.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
    },
    /// InfoNCE / NT-Xent with in-batch negatives (PML's `NTXentLoss`; sentence-transformers'
    /// MultipleNegativesRankingLoss is its one-directional form) on cosine similarity: every
    /// positive pair of the P×K batch against the batch's other classes. Takes no miner
    /// (`[train.miner] kind = "none"`).
    InfoNce {
        /// Temperature `τ` (> 0; sentence-transformers' scale 20 is τ = 0.05).
        #[serde(default = "default_temperature")]
        temperature: f64,
    },
}

fn default_arcface_margin() -> f64 {
    28.6
}
fn default_face_scale() -> f64 {
    64.0
}
fn default_cosface_margin() -> f64 {
    0.35
}
fn default_softmax_temperature() -> f64 {
    0.05
}
fn default_proxy_anchor_margin() -> f64 {
    0.1
}
fn default_proxy_anchor_alpha() -> f64 {
    32.0
}
fn default_one() -> f64 {
    1.0
}
fn default_centers_per_class() -> usize {
    10
}
fn default_soft_triple_la() -> f64 {
    20.0
}
fn default_soft_triple_gamma() -> f64 {
    0.1
}
fn default_soft_triple_margin() -> f64 {
    0.01
}

fn default_temperature() -> f64 {
    0.05
}

fn default_margin() -> f64 {
    0.2
}
fn default_neg_margin() -> f64 {
    1.0
}
fn default_reducer() -> Reducer {
    Reducer::AvgNonZero
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec::Triplet {
            margin: 0.2,
            swap: false,
            smooth: false,
            distance: Distance::euclidean_normalized(),
            reducer: Reducer::AvgNonZero,
        }
    }
}

/// A built loss.
#[derive(Debug, Clone)]
pub enum BuiltLoss {
    /// Triplet.
    Triplet(TripletMarginLoss),
    /// Contrastive.
    Contrastive(ContrastiveLoss),
    /// InfoNCE / NT-Xent.
    InfoNce(InfoNceLoss),
}

impl BuiltLoss {
    /// The loss behind margin's one entry point.
    pub fn as_metric_loss(&self) -> &dyn margin::MetricLoss {
        match self {
            BuiltLoss::Triplet(l) => l,
            BuiltLoss::Contrastive(l) => l,
            BuiltLoss::InfoNce(l) => l,
        }
    }
}

impl LossSpec {
    /// The loss's distance (the cosine between normalised rows for the losses with class
    /// parameters: what a miner would have to share; they take no miner).
    pub fn distance(&self) -> Distance {
        match self {
            LossSpec::Triplet { distance, .. } | LossSpec::Contrastive { distance, .. } => *distance,
            LossSpec::InfoNce { .. } => Distance::Cosine(margin::CosineSimilarity),
            _ => Distance::from_name("cosine", true).expect("a distance name"),
        }
    }

    /// Whether the loss holds per-class parameters (built by the trainer, which knows the
    /// class count: [`crate::param_loss`]).
    pub fn is_parametric(&self) -> bool {
        !matches!(self, LossSpec::Triplet { .. } | LossSpec::Contrastive { .. } | LossSpec::InfoNce { .. })
    }

    /// Validates and builds a stateless loss; `None` for a loss with class parameters
    /// (validated here, built by the trainer: [`crate::param_loss::ParamLoss::init`]).
    pub fn build_stateless(&self) -> Result<Option<BuiltLoss>> {
        if self.is_parametric() {
            crate::param_loss::validate(self)?;
            return Ok(None);
        }
        self.build().map(Some)
    }

    /// Validates and builds a stateless loss (an error for a loss with class parameters:
    /// see [`LossSpec::build_stateless`]).
    pub fn build(&self) -> Result<BuiltLoss> {
        Ok(match self {
            LossSpec::Triplet { margin, swap, smooth, distance, reducer } => BuiltLoss::Triplet(
                TripletMarginLossConfig::new()
                    .with_margin(*margin)
                    .with_swap(*swap)
                    .with_smooth(*smooth)
                    .with_distance(*distance)
                    .with_reducer(*reducer)
                    .init()?,
            ),
            LossSpec::Contrastive { pos_margin, neg_margin, distance, reducer } => BuiltLoss::Contrastive(
                ContrastiveLossConfig::new()
                    .with_pos_margin(*pos_margin)
                    .with_neg_margin(*neg_margin)
                    .with_distance(*distance)
                    .with_reducer(*reducer)
                    .init()?,
            ),
            LossSpec::InfoNce { temperature } => {
                check::positive("train.loss.temperature", *temperature)?;
                BuiltLoss::InfoNce(InfoNceLoss::new(*temperature)?)
            }
            _ => {
                return Err(MarginError::Unsupported(
                    "a loss with class parameters is built by the trainer, which knows the class count (LossSpec::build_stateless)".into(),
                ));
            }
        })
    }
}

/// The loss's parameters against the range of its distance, the miner against the loss
/// (the image and text trainers' one check).
pub(crate) fn validate_loss_and_miner(loss: &LossSpec, miner: &MinerSpec) -> Result<()> {
    {
        match loss {
            LossSpec::Triplet { margin, smooth, distance, .. } => {
                if !smooth {
                    check::margin("train.loss.margin", *margin, distance)?;
                }
            }
            LossSpec::Contrastive { pos_margin, neg_margin, distance, .. } => {
                check::threshold("train.loss.pos_margin", *pos_margin, distance)?;
                check::threshold("train.loss.neg_margin", *neg_margin, distance)?;
            }
            LossSpec::InfoNce { .. } if miner.miner.is_some() => {
                return Err(invalid("train.miner", "a miner", "InfoNCE scores every positive pair against every in-batch negative: set [train.miner] kind = \"none\""));
            }
            LossSpec::InfoNce { .. } => {}
            _ => {
                crate::param_loss::validate_lr(loss)?;
                if miner.build(loss.distance())?.is_some() {
                    return Err(invalid(
                        "train.miner",
                        "a miner",
                        "a loss with class parameters compares every row with its class parameters (no tuples to mine): use kind = \"none\"",
                    ));
                }
            }
        }
        loss.build_stateless()?;
        miner.build(loss.distance())?;
        Ok(())
    }
}

