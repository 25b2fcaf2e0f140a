//! Training configuration: every knob of a run, serialisable (the CLI reads it from TOML).

use serde::{Deserialize, Serialize};

use margin::miner::{MinerConfig, TripletMarginMiner, TripletType};
use margin::{ContrastiveLoss, ContrastiveLossConfig, Distance, MarginError, Reducer, TripletMarginLoss, TripletMarginLossConfig};
use margin_data::ModelConfig;

type Result<T> = std::result::Result<T, MarginError>;

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> MarginError {
    MarginError::InvalidConfig { field, value: value.to_string(), reason }
}

/// P×K batches: `classes_per_batch` classes, `samples_per_class` samples each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerConfig {
    /// P: classes per batch.
    pub classes_per_batch: usize,
    /// K: samples per class (drawn with replacement when a class has fewer).
    pub samples_per_class: usize,
    /// Batches per epoch; default: training samples / (P·K) (PML's `length_before_new_iter`).
    #[serde(default)]
    pub batches_per_epoch: Option<usize>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { classes_per_batch: 32, samples_per_class: 4, batches_per_epoch: None }
    }
}

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
}

impl LossSpec {
    /// The loss's distance.
    pub fn distance(&self) -> Distance {
        match self {
            LossSpec::Triplet { distance, .. } | LossSpec::Contrastive { distance, .. } => *distance,
        }
    }

    /// Validates and builds.
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
        })
    }
}

/// The serde form of a [`Distance`] in configuration files, in the project's vocabulary:
/// `"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` — rows L2-normalised first
/// (PML's default) — or a table stating the normalisation,
/// `{ kind = "euclidean", normalize = false }`. The form of earlier releases,
/// `{ kind = "lp", power = "Euclidean" | "SquaredEuclidean", normalize = true }`, is read too.
/// Written as the string when rows are normalised, else as the table.
pub(crate) mod distance_form {
    use margin::{CosineSimilarity, Distance, DotProductSimilarity, LpDistance, Power};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    /// `name` (one of [`NAMES`]) with `normalize`.
    pub fn named(name: &str, normalize: bool) -> Result<Distance, String> {
        let lp = |power| Distance::Lp(LpDistance { power, normalize });
        Ok(match name {
            "euclidean" => lp(Power::Euclidean),
            "squared-euclidean" => lp(Power::SquaredEuclidean),
            "cosine" if !normalize => {
                return Err("cosine always normalises; for raw dot products write distance = { kind = \"dot\", normalize = false }".into());
            }
            "cosine" => Distance::Cosine(CosineSimilarity),
            "dot" => Distance::Dot(DotProductSimilarity { normalize }),
            other => return Err(format!("unknown distance `{other}`, expected one of `euclidean`, `squared-euclidean`, `cosine`, `dot`")),
        })
    }

    /// The name and normalisation of `d`.
    pub fn name_of(d: &Distance) -> (&'static str, bool) {
        match *d {
            Distance::Lp(LpDistance { power: Power::Euclidean, normalize }) => ("euclidean", normalize),
            Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize }) => ("squared-euclidean", normalize),
            Distance::Cosine(_) => ("cosine", true),
            Distance::Dot(DotProductSimilarity { normalize }) => ("dot", normalize),
        }
    }

    /// Reads either form (and the earlier one) from a generic value.
    pub fn from_value(v: &Value) -> Result<Distance, String> {
        match v {
            Value::String(name) => named(name, true),
            Value::Object(map) => {
                let kind = map.get("kind").and_then(Value::as_str).ok_or("a distance table needs `kind`, e.g. { kind = \"euclidean\", normalize = false }")?;
                let normalize = match map.get("normalize") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => return Err(format!("distance `normalize` must be true or false, not {other}")),
                };
                let allowed: &[&str] = if kind == "lp" { &["kind", "power", "normalize"] } else { &["kind", "normalize"] };
                if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(format!("unknown distance field `{k}`, expected `kind` or `normalize`"));
                }
                if kind == "lp" {
                    // The earlier form: `{ kind = "lp", power = "Euclidean", normalize = true }`.
                    let power = match map.get("power").and_then(Value::as_str) {
                        Some("Euclidean") => Power::Euclidean,
                        Some("SquaredEuclidean") => Power::SquaredEuclidean,
                        _ => return Err("distance kind \"lp\" needs power = \"Euclidean\" or \"SquaredEuclidean\" (or write distance = \"euclidean\" / \"squared-euclidean\")".into()),
                    };
                    return Ok(Distance::Lp(LpDistance { power, normalize }));
                }
                named(kind, normalize)
            }
            other => Err(format!("a distance is a name (\"euclidean\", \"squared-euclidean\", \"cosine\", \"dot\") or a table {{ kind, normalize }}, not {other}")),
        }
    }

    /// The value written for `d`.
    pub fn to_value(d: &Distance) -> Value {
        match name_of(d) {
            (name, true) => Value::String(name.into()),
            (name, false) => serde_json::json!({ "kind": name, "normalize": false }),
        }
    }

    /// For `#[serde(with = "distance_form")]`.
    pub fn serialize<S: Serializer>(d: &Distance, s: S) -> Result<S::Ok, S::Error> {
        to_value(d).serialize(s)
    }

    /// For `#[serde(with = "distance_form")]`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Distance, D::Error> {
        from_value(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The miner of a run (`[train.miner]`): a table tagged by `kind` (`"none"` or a name of
/// [`MinerConfig::NAMES`]) holding that miner's own parameters under their own names, every
/// one optional (PML's defaults), unknown ones refused, and an optional `distance`
/// (`"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` on L2-normalised rows, or
/// `{ kind = "euclidean", normalize = false }`) to mine with — **absent: the loss's distance** (in `margin train` and
/// `margin loss` alike).
///
/// ```toml
/// [train.miner]
/// kind = "multi-similarity"
/// epsilon = 0.1
/// distance = "cosine"   # optional; PML's default for this miner (absent: the loss's distance)
/// ```
///
/// The spelling of earlier releases, `name = "..."` with `margin` (the triplet-margin miner's
/// margin or the multi-similarity miner's epsilon) and `type_of_triplets`, is read and
/// translated, so their configurations and run folders (`config.toml`, `state.json`) still
/// load and resume; it is written in the current spelling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerSpec {
    /// The miner and its parameters; `None` for `kind = "none"` (every valid tuple).
    /// Its own distance field is not used: [`MinerSpec::build`] replaces it.
    pub miner: Option<MinerConfig>,
    /// The distance to mine with; `None`: the loss's.
    pub distance: Option<Distance>,
}

impl Default for MinerSpec {
    /// Triplet-margin, semi-hard triplets within margin 0.2, on the loss's distance.
    fn default() -> Self {
        MinerSpec::new(MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard)))
    }
}

impl MinerSpec {
    /// No miner: the loss uses every valid tuple.
    pub fn none() -> Self {
        MinerSpec { miner: None, distance: None }
    }

    /// `miner`, mining on the loss's distance.
    pub fn new(miner: MinerConfig) -> Self {
        MinerSpec { miner: Some(miner), distance: None }
    }

    /// The same miner on its own `distance`.
    pub fn with_distance(self, distance: Distance) -> Self {
        MinerSpec { distance: Some(distance), ..self }
    }

    /// The miner's `kind` (`"none"` without a miner).
    pub fn kind(&self) -> &'static str {
        self.miner.as_ref().map_or("none", MinerConfig::name)
    }

    /// Builds the miner (`None` for `"none"`), mining with its own distance or else
    /// `loss_distance`, and validates it.
    pub fn build(&self, loss_distance: Distance) -> Result<Option<MinerConfig>> {
        let Some(m) = self.miner else {
            if let Some(d) = self.distance {
                return Err(invalid("miner.distance", d.describe(), "kind = \"none\" mines nothing; remove `distance`"));
            }
            return Ok(None);
        };
        let m = match self.distance {
            Some(d) if !m.has_own_distance() && d != m.distance() => {
                return Err(invalid(
                    "miner.distance",
                    d.describe(),
                    "this miner mines on L2-normalised Euclidean distances only; remove `distance`",
                ));
            }
            Some(d) => m.with_distance(d),
            None => m.with_distance(loss_distance),
        };
        m.validate()?;
        Ok(Some(m))
    }

    /// Reads the table (current or earlier spelling) from a generic value.
    fn from_value(value: serde_json::Value) -> std::result::Result<Self, String> {
        use serde_json::Value;
        let Value::Object(mut map) = value else {
            return Err(format!("[train.miner] is a table (kind = \"...\" and the miner's parameters), not {value}"));
        };
        if map.contains_key("name") {
            map = translate_earlier_spelling(map)?;
        }
        let kind = match map.get("kind") {
            Some(Value::String(k)) => k.clone(),
            Some(other) => return Err(format!("miner `kind` is a name, not {other}")),
            None => return Err(format!("missing field `kind` (the miner: `none` or one of {})", quoted(MinerConfig::NAMES))),
        };
        let distance = map.remove("distance").map(|d| distance_form::from_value(&d).map_err(|e| format!("miner `distance`: {e}"))).transpose()?;
        if kind == "none" {
            if let Some(k) = map.keys().find(|k| *k != "kind") {
                return Err(format!("unknown field `{k}`: kind = \"none\" takes no parameters"));
            }
            if distance.is_some() {
                return Err("kind = \"none\" mines nothing; remove `distance`".into());
            }
            return Ok(MinerSpec::none());
        }
        if MinerConfig::default_for(&kind).is_none() {
            return Err(format!("unknown miner kind `{kind}`, expected `none` or one of {}", quoted(MinerConfig::NAMES)));
        }
        let miner: MinerConfig = serde_json::from_value(Value::Object(map)).map_err(|e| format!("miner `{kind}`: {e}"))?;
        Ok(MinerSpec { miner: Some(miner), distance })
    }

    /// The table as written: `kind`, the miner's parameters, `distance` when it has its own.
    fn to_value(self) -> serde_json::Value {
        use serde_json::Value;
        let mut map = serde_json::Map::new();
        if let Some(m) = &self.miner
            && let Value::Object(fields) = serde_json::to_value(m).expect("a miner serialises")
        {
            // Non-finite numbers become null in a JSON value: left out (validation refuses them).
            map.extend(fields.into_iter().filter(|(k, v)| k != "kind" && k != "distance" && !v.is_null()));
        }
        if let Some(d) = &self.distance {
            map.insert("distance".into(), distance_form::to_value(d));
        }
        map.insert("kind".into(), Value::String(self.kind().into()));
        Value::Object(map)
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The spelling of earlier releases, `name` + `margin` + `type_of_triplets` (the miner on the
/// loss's distance), in the current one: `name` → `kind`; `margin` → `margin` for
/// triplet-margin, `epsilon` for multi-similarity, refused elsewhere as it was then; nulls
/// (`state.json` wrote absent options as null) dropped.
fn translate_earlier_spelling(map: serde_json::Map<String, serde_json::Value>) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    use serde_json::Value;
    if map.contains_key("kind") {
        return Err("[train.miner] has both `kind` and `name`; write only kind = \"...\" (`name` is the earlier spelling)".into());
    }
    let mut out = serde_json::Map::new();
    let name = match map.get("name") {
        Some(Value::String(n)) => n.clone(),
        other => return Err(format!("miner `name` is a name, not {}", other.unwrap_or(&Value::Null))),
    };
    for (k, v) in map {
        if v.is_null() || k == "name" {
            continue;
        }
        let key = match (k.as_str(), name.as_str()) {
            // Ignored then as now: "none" built no miner whatever else was set.
            (_, "none") => continue,
            ("margin", "triplet-margin") | ("type_of_triplets", "triplet-margin") => k,
            ("margin", "multi-similarity") => "epsilon".to_string(),
            ("margin", "pair-margin") => {
                return Err("pair-margin has two margins: write kind = \"pair-margin\" with pos_margin = ... and neg_margin = ... (instead of name and margin)".into());
            }
            ("margin", other) => return Err(format!("the {other} miner has no margin: write kind = \"{other}\" (instead of name) without margin")),
            ("type_of_triplets", other) => {
                return Err(format!("only the triplet-margin miner has type_of_triplets: write kind = \"{other}\" (instead of name) without it"));
            }
            _ => return Err(format!("unknown field `{k}` beside the earlier spelling `name`; write kind = \"{name}\" with the miner's own parameters")),
        };
        out.insert(key, v);
    }
    out.insert("kind".into(), Value::String(name));
    Ok(out)
}

impl Serialize for MinerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let serde_json::Value::Object(map) = self.to_value() else { unreachable!("to_value gives a table") };
        // `kind` first, then the parameters, then `distance`.
        let mut out = s.serialize_map(Some(map.len()))?;
        out.serialize_entry("kind", &map["kind"])?;
        for (k, v) in map.iter().filter(|(k, _)| *k != "kind" && *k != "distance") {
            out.serialize_entry(k, v)?;
        }
        if let Some(d) = map.get("distance") {
            out.serialize_entry("distance", d)?;
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for MinerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        MinerSpec::from_value(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8); L2 weight decay added to the gradient.
    Adam {
        /// Weight decay (L2).
        #[serde(default)]
        weight_decay: f64,
    },
    /// AdamW (decoupled weight decay).
    Adamw {
        /// Decoupled weight decay.
        #[serde(default = "default_adamw_wd")]
        weight_decay: f64,
    },
    /// SGD with momentum (PyTorch semantics: dampening 0).
    Sgd {
        /// Momentum.
        #[serde(default = "default_momentum")]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
        /// Weight decay (L2).
        #[serde(default)]
        weight_decay: f64,
    },
}

fn default_adamw_wd() -> f64 {
    1e-2
}
fn default_momentum() -> f64 {
    0.9
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::Adam { weight_decay: 0.0 }
    }
}

/// Learning-rate schedule, evaluated per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `step_epochs` epochs.
    Step {
        /// Period in epochs.
        step_epochs: usize,
        /// Factor.
        gamma: f64,
    },
    /// Cosine annealing from `lr` to `min_lr` over the run.
    Cosine {
        /// Final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::Constant
    }
}

impl Schedule {
    /// Learning rate at (0-based) `epoch` of `epochs` for base rate `lr`.
    pub fn lr(&self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { step_epochs, gamma } => lr * gamma.powi((epoch / step_epochs.max(1)) as i32),
            Schedule::Cosine { min_lr } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// Random image augmentation (images only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Maximum shift in pixels (each axis, uniform).
    #[serde(default = "default_shift")]
    pub max_shift: f64,
    /// Maximum rotation in degrees (uniform in ±).
    #[serde(default = "default_rotation")]
    pub max_rotation_deg: f64,
    /// Class augmentation: every training class also appears rotated by 90°, 180° and
    /// 270° as three new classes (Santoro et al. 2016, Vinyals et al. 2016), so an epoch
    /// is four times longer. Square images only; validation and test data are untouched.
    #[serde(default)]
    pub rotated_classes: bool,
}

fn default_shift() -> f64 {
    2.0
}
fn default_rotation() -> f64 {
    10.0
}

/// Everything the trainer needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of every random choice (initialisation, batches, mining, augmentation).
    #[serde(default)]
    pub seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Optimizer.
    #[serde(default)]
    pub optimizer: OptimizerSpec,
    /// The network.
    pub model: ModelConfig,
    /// The loss.
    #[serde(default)]
    pub loss: LossSpec,
    /// The miner.
    #[serde(default)]
    pub miner: MinerSpec,
    /// The batch sampler.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// Augmentation (off when absent).
    #[serde(default)]
    pub augment: Option<AugmentConfig>,
    /// Validate on the validation classes every this many epochs (0 = never);
    /// the best checkpoint by MAP@R is kept as `best/`.
    #[serde(default = "default_validate_every")]
    pub validate_every: usize,
    /// Samples per forward pass when embedding for validation/evaluation.
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
}

fn default_validate_every() -> usize {
    1
}
fn default_eval_batch() -> usize {
    1024
}

impl TrainConfig {
    /// The bundled Omniglot default (ConvNet-4, 28×28).
    pub fn omniglot_default() -> Self {
        TrainConfig {
            seed: 0,
            epochs: 35,
            lr: 1e-3,
            schedule: Schedule::Constant,
            optimizer: OptimizerSpec::default(),
            model: ModelConfig::Convnet4 { width: 64, embedding_dim: 64, normalize: false },
            loss: LossSpec::default(),
            miner: MinerSpec::default(),
            sampler: SamplerConfig::default(),
            augment: None,
            validate_every: 5,
            eval_batch: 1024,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(invalid("epochs", self.epochs, "must be >= 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(invalid("lr", self.lr, "must be finite and > 0"));
        }
        if self.sampler.classes_per_batch < 2 {
            return Err(invalid("sampler.classes_per_batch", self.sampler.classes_per_batch, "need at least 2 classes per batch for negatives"));
        }
        if self.sampler.samples_per_class < 2 {
            return Err(invalid("sampler.samples_per_class", self.sampler.samples_per_class, "need at least 2 samples per class for positives"));
        }
        if self.sampler.batches_per_epoch == Some(0) {
            return Err(invalid("sampler.batches_per_epoch", 0, "must be >= 1"));
        }
        if self.eval_batch == 0 {
            return Err(invalid("eval_batch", 0, "must be >= 1"));
        }
        match self.schedule {
            Schedule::Step { step_epochs, gamma } => {
                if step_epochs == 0 {
                    return Err(invalid("schedule.step_epochs", step_epochs, "must be >= 1"));
                }
                if !(gamma.is_finite() && gamma > 0.0) {
                    return Err(invalid("schedule.gamma", gamma, "must be finite and > 0"));
                }
            }
            Schedule::Cosine { min_lr } if !(min_lr.is_finite() && min_lr >= 0.0 && min_lr <= self.lr) => {
                return Err(invalid("schedule.min_lr", min_lr, "must be in [0, lr]"));
            }
            _ => {}
        }
        let wd = match self.optimizer {
            OptimizerSpec::Adam { weight_decay } | OptimizerSpec::Adamw { weight_decay } => weight_decay,
            OptimizerSpec::Sgd { momentum, weight_decay, .. } => {
                if !(0.0..1.0).contains(&momentum) {
                    return Err(invalid("optimizer.momentum", momentum, "must be in [0, 1)"));
                }
                weight_decay
            }
        };
        if !(wd.is_finite() && wd >= 0.0) {
            return Err(invalid("optimizer.weight_decay", wd, "must be finite and >= 0"));
        }
        if let Some(a) = self.augment
            && !(a.max_shift.is_finite() && a.max_shift >= 0.0 && a.max_rotation_deg.is_finite() && a.max_rotation_deg >= 0.0)
        {
            return Err(invalid("augment", format!("{a:?}"), "max_shift and max_rotation_deg must be finite and >= 0"));
        }
        self.loss.build()?;
        self.miner.build(self.loss.distance())?;
        Ok(())
    }
}
