//! `margin loss`: compute a loss on a saved batch and show what it does to it. The losses
//! with class parameters (ArcFace, CosFace, normalised softmax, Proxy-Anchor, Proxy-NCA,
//! SoftTriple) are built as `margin train` builds them: `loss_param.rs`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use margin::burn::tensor::{DType, Tensor, TensorData};
use clap::{Args, ValueEnum};
use margin::{
    ContrastiveForm, MinerStats, ContrastiveLossConfig, Distance,
    KindPooling, LossOutput, LossStats, PairPolarity, Reducer,
    TripletMarginLossConfig, Triplets,
};
use ndarray::Array2;
use serde::Serialize;

use crate::npy::{FloatKind, read_index_rows, read_labels, read_matrix, write_matrix};
use rand::SeedableRng;

/// Which loss. The ones after `contrastive` hold class parameters (`--params` or `--seed`);
/// their names are margin-train's `LossSpec` kinds (`kind = "proxy_anchor"` in a config).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Triplet margin loss.
    Triplet,
    /// Contrastive loss.
    Contrastive,
    /// ArcFace (Deng 2019): additive angular margin --margin (degrees, 28.6), --scale (64).
    Arcface,
    /// CosFace (Wang 2018): additive cosine margin --margin (0.35), --scale (64).
    Cosface,
    /// Normalised softmax (Zhai & Wu 2019): --temperature (0.05).
    NormalizedSoftmax,
    /// Proxy-Anchor (Kim 2020): --margin (0.1), --alpha (32).
    ProxyAnchor,
    /// Proxy-NCA (Movshovitz-Attias 2017): --softmax-scale (1).
    ProxyNca,
    /// SoftTriple (Qian 2019): --centers-per-class (10), --la (20), --gamma (0.1), --margin (0.01).
    SoftTriple,
}

impl LossKind {
    /// Whether the loss holds per-class parameters.
    pub fn is_parametric(self) -> bool {
        !matches!(self, LossKind::Triplet | LossKind::Contrastive)
    }
}

/// Which distance.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistanceKind {
    /// ‖x − y‖₂
    Euclidean,
    /// ‖x − y‖₂²
    SquaredEuclidean,
    /// x̂ · ŷ (always normalised)
    Cosine,
    /// x · y
    Dot,
}

/// Which reducer.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReducerKind {
    /// Mean over all elements.
    Mean,
    /// Sum over all elements.
    Sum,
    /// Mean over the elements > 0.
    AvgNonZero,
    /// Mean over elements within (--threshold-low, --threshold-high).
    Threshold,
}

/// Contrastive penalty shape.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormKind {
    /// relu(d − pos_margin), relu(neg_margin − d) (pytorch-metric-learning).
    Linear,
    /// The same, squared (Hadsell 2006 with --pos-margin 0).
    Squared,
}

/// Reduction of positive vs negative pair terms.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolingKind {
    /// Reduce positive and negative pairs separately, then add (pytorch-metric-learning).
    Separate,
    /// Reduce all pairs together (Hadsell 2006).
    Pooled,
}

/// Which miner chooses the tuples (pytorch-metric-learning semantics).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinerKind {
    /// Per anchor, the farthest positive and the closest negative (Hermans 2017).
    BatchHard,
    /// Per anchor, a positive and a negative by --pos-strategy / --neg-strategy.
    BatchEasyHard,
    /// Triplets by --miner-type relative to --miner-margin.
    TripletMargin,
    /// FaceNet / TensorFlow semi-hard: closest negative farther than the positive, else the hardest.
    SemihardFacenet,
    /// Pairs violating --miner-pos-margin / --miner-neg-margin.
    PairMargin,
    /// Multi-similarity pairs with slack --epsilon (Wang 2019).
    MultiSimilarity,
    /// Negatives drawn with distance-weighted probabilities (Wu 2017), seeded by --seed.
    DistanceWeighted,
}

/// TripletMarginMiner's triplet type.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TripletTypeArg {
    /// Every margin violator (Δ ≤ m).
    All,
    /// Δ ≤ 0.
    Hard,
    /// 0 < Δ ≤ m.
    Semihard,
    /// Δ > m.
    Easy,
}

/// BatchEasyHardMiner's strategy for one side.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    /// Closest positive / farthest negative.
    Easy,
    /// Hard, bounded by the other side's choice.
    Semihard,
    /// Farthest positive / closest negative.
    Hard,
    /// Every pair.
    All,
}

/// FaceNetSemiHardMiner's rule when no negative is farther than the positive.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackArg {
    /// The farthest of the closer negatives (TensorFlow Addons).
    Tensorflow,
    /// The closest negative.
    Hardest,
}

/// Float precision of the computation.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtypeKind {
    /// 32-bit.
    F32,
    /// 64-bit.
    F64,
}

/// Arguments of `margin loss`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("tuples").required(true).args(["labels", "triplets", "similar"])))]
pub struct LossArgs {
    /// `[B, D]` embeddings (.npy, float32 or float64).
    #[arg(long)]
    pub embeddings: PathBuf,
    /// `[B]` integer labels: the loss uses every valid triplet / pair.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// `[n, 3]` row indices (anchor, positive, negative).
    #[arg(long, conflicts_with_all = ["labels", "similar", "dissimilar"])]
    pub triplets: Option<PathBuf>,
    /// `[n, 2]` row indices of similar (same-class) pairs.
    #[arg(long, requires = "dissimilar", conflicts_with = "labels")]
    pub similar: Option<PathBuf>,
    /// `[n, 2]` row indices of dissimilar (different-class) pairs.
    #[arg(long, requires = "similar", conflicts_with = "labels")]
    pub dissimilar: Option<PathBuf>,
    /// The loss.
    #[arg(long, value_enum)]
    pub loss: LossKind,
    /// The loss's margin: triplet (the distance's units; default 0.05), arcface (degrees;
    /// 28.6), cosface (cosine; 0.35), proxy-anchor (cosine; 0.1), soft-triple (0.01).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub margin: Option<f64>,
    /// Contrastive: similar pairs are penalised beyond this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub pos_margin: f64,
    /// Contrastive: dissimilar pairs are penalised within this.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub neg_margin: f64,
    /// Contrastive penalty shape.
    #[arg(long, value_enum, default_value_t = FormKind::Linear)]
    pub form: FormKind,
    /// Contrastive: reduce positive and negative pairs separately or together.
    #[arg(long, value_enum, default_value_t = PoolingKind::Separate)]
    pub pooling: PoolingKind,
    /// Distance.
    #[arg(long, value_enum, default_value_t = DistanceKind::Euclidean)]
    pub distance: DistanceKind,
    /// L2-normalise embeddings first (cosine always does).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub normalize: bool,
    /// Reducer.
    #[arg(long, value_enum, default_value_t = ReducerKind::AvgNonZero)]
    pub reducer: ReducerKind,
    /// Threshold reducer: exclusive lower bound.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub threshold_low: Option<f64>,
    /// Threshold reducer: exclusive upper bound.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub threshold_high: Option<f64>,
    /// Triplet: distance swap (Balntas 2016).
    #[arg(long)]
    pub swap: bool,
    /// Triplet: soft margin, softplus instead of hinge (Hermans 2017).
    #[arg(long)]
    pub smooth: bool,
    /// Mine tuples from the labelled batch first; the loss then uses only those. The miner
    /// mines on the loss's --distance / --normalize unless --miner-distance is given (the rule
    /// of `margin train`'s [train.miner]).
    #[arg(long, value_enum, requires = "labels")]
    pub miner: Option<MinerKind>,
    /// The miner as the config file's `[train.miner]` table, inline: e.g.
    /// `--miner-table 'kind = "multi-similarity", epsilon = 0.1, distance = "cosine"'`
    /// (every miner's every parameter; the loss's distance unless `distance` is given).
    #[arg(long, value_name = "TOML", requires = "labels", conflicts_with = "miner")]
    pub miner_table: Option<String>,
    /// The miner's own distance (default: the loss's --distance and --normalize, as in
    /// `margin train`; PML's multi-similarity miner uses cosine: --miner-distance cosine).
    #[arg(long, value_enum)]
    pub miner_distance: Option<DistanceKind>,
    /// L2-normalise before mining (default true with --miner-distance; alone it changes only
    /// the normalisation of the loss's distance for the miner).
    #[arg(long, action = clap::ArgAction::Set)]
    pub miner_normalize: Option<bool>,
    /// triplet-margin: the miner's margin (independent of the loss's --margin; default 0.2).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub miner_margin: Option<f64>,
    /// triplet-margin: which triplets to keep (default all).
    #[arg(long, value_enum)]
    pub miner_type: Option<TripletTypeArg>,
    /// batch-easy-hard: positive strategy (default easy).
    #[arg(long, value_enum)]
    pub pos_strategy: Option<StrategyArg>,
    /// batch-easy-hard: negative strategy (default semihard).
    #[arg(long, value_enum)]
    pub neg_strategy: Option<StrategyArg>,
    /// batch-easy-hard: the chosen positive lies in LOW ≤ value ≤ HIGH, the distance's units
    /// (a strategy `all` keeps every positive).
    #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"], allow_negative_numbers = true)]
    pub allowed_pos_range: Option<Vec<f64>>,
    /// batch-easy-hard: the chosen negative lies in LOW ≤ value ≤ HIGH, the distance's units
    /// (a strategy `all` keeps every negative).
    #[arg(long, num_args = 2, value_names = ["LOW", "HIGH"], allow_negative_numbers = true)]
    pub allowed_neg_range: Option<Vec<f64>>,
    /// semihard-facenet: the negative when none is farther than the positive (default tensorflow).
    #[arg(long, value_enum)]
    pub fallback: Option<FallbackArg>,
    /// pair-margin: positive pairs farther than this are kept (default 0.2).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub miner_pos_margin: Option<f64>,
    /// pair-margin: negative pairs closer than this are kept (default 0.8).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub miner_neg_margin: Option<f64>,
    /// multi-similarity: slack ε (default 0.1).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub epsilon: Option<f64>,
    /// distance-weighted: distances below this are clamped (default 0.5).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub cutoff: Option<f64>,
    /// distance-weighted: negatives at or beyond this are never drawn (default 1.4).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::finite)]
    pub nonzero_loss_cutoff: Option<f64>,
    /// Seed of the miner's random draw (distance-weighted; default 0); for a loss with class
    /// parameters, the seed its parameters are drawn from as `margin train` draws them.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the mined tuples here (.npy int64: [n, 3] triplets, or [n, 4] pairs a1, p, a2, n padded with -1).
    #[arg(long, requires = "miner")]
    pub mined_out: Option<PathBuf>,
    /// Precision of the computation.
    #[arg(long, value_enum, default_value_t = DtypeKind::F32)]
    pub dtype: DtypeKind,
    /// Device to compute on: cpu (default), cuda[:N], wgpu[:N] or vulkan (GPU devices need a
    /// margin built with `--features cuda` or `--features wgpu`; wgpu has no f64).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: margin_train::DeviceSpec,
    /// Write d loss / d embeddings here (.npy, same dtype as --dtype).
    #[arg(long)]
    pub grad_out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The losses with class parameters.
    #[command(flatten)]
    pub param: super::loss_param::ParamArgs,
}

#[derive(Serialize)]
struct Report {
    loss_function: String,
    distance: String,
    reducer: String,
    rows: usize,
    dim: usize,
    dtype: String,
    #[serde(flatten)]
    stats: LossStats,
    miner: Option<String>,
    mined: Option<usize>,
    miner_stats: Option<MinerStats>,
    grad_out: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<super::loss_param::ParamInfo>,
}

pub(super) fn distance(args: &LossArgs) -> Result<Distance> {
    distance_of(args.distance, args.normalize)
}

pub(super) fn distance_of(kind: DistanceKind, normalize: bool) -> Result<Distance> {
    // The clap value names are the conventions' names (`Distance::NAMES`): the only refusal
    // left is cosine without normalisation.
    let name = kind.to_possible_value().expect("no skipped variants");
    match Distance::from_name(name.get_name(), normalize) {
        Some(d) => Ok(d),
        None => bail!("--distance cosine always normalises; use --distance dot --normalize false for raw dot products"),
    }
}

fn reducer(args: &LossArgs) -> Result<Reducer> {
    if args.reducer != ReducerKind::Threshold && (args.threshold_low.is_some() || args.threshold_high.is_some()) {
        bail!("--threshold-low/--threshold-high only apply with --reducer threshold");
    }
    Ok(match args.reducer {
        ReducerKind::Mean => Reducer::Mean,
        ReducerKind::Sum => Reducer::Sum,
        ReducerKind::AvgNonZero => Reducer::AvgNonZero,
        ReducerKind::Threshold => Reducer::Threshold { low: args.threshold_low, high: args.threshold_high },
    })
}

/// `rows` of `x` as a differentiable gather.
fn select(x: &Tensor<2>, rows: impl Iterator<Item = usize>) -> Tensor<2> {
    let idx: Vec<i64> = rows.map(|r| r as i64).collect();
    let n = idx.len();
    x.clone().select(0, Tensor::<1, margin::burn::tensor::Int>::from_data(TensorData::new(idx, [n]), &x.device()))
}

/// What a loss computed: its output, the mined tuples, and a parametric loss's parameters.
struct Computed {
    out: LossOutput,
    mined: Option<margin::Mined>,
    param: Option<(Tensor<2>, super::loss_param::ParamInfo)>,
}

fn compute(args: &LossArgs, x: &Tensor<2>) -> Result<Computed> {
    if args.loss.is_parametric() {
        let r = super::loss_param::compute(args, x)?;
        return Ok(Computed { out: r.out, mined: None, param: Some((r.params, r.info)) });
    }
    if let Some(flag) = args.param.given() {
        bail!("{flag} applies to the losses with class parameters (--loss arcface, cosface, normalized-softmax, proxy-anchor, proxy-nca, soft-triple)");
    }
    let (out, mined) = compute_stateless(args, x)?;
    Ok(Computed { out, mined, param: None })
}

fn compute_stateless(args: &LossArgs, x: &Tensor<2>) -> Result<(LossOutput, Option<margin::Mined>)> {
    let miner = super::loss_miner::miner(args)?;
    if miner.is_some() && args.labels.is_none() {
        bail!("--miner mines a labelled batch; give --labels");
    }
    // `--labels`: the loss's one entry point, mining inside it with --miner; the tuples are
    // asked for (the report counts them, --mined-out saves them), so they are listed.
    let labelled = |loss: &dyn margin::MetricLoss| -> Result<(LossOutput, Option<margin::Mined>)> {
        let labels = read_labels(args.labels.as_ref().expect("clap requires one source"))?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed.unwrap_or(0));
        let tuples = match &miner {
            Some(cfg) => margin::Tuples::Mined(margin::Mining::new(cfg, &mut rng).returning_tuples()),
            None => margin::Tuples::All,
        };
        let out = loss.forward(margin::Batch::labelled(x.clone(), &labels), tuples).map_err(|e| anyhow::anyhow!(e))?;
        let mined = out.mined.clone();
        Ok((out, mined))
    };
    let rows = x.dims()[0];
    let distance = distance(args)?;
    let reducer = reducer(args)?;
    let lib = |e: margin::MarginError| anyhow::anyhow!(e);
    match args.loss {
        LossKind::Triplet => {
            if args.similar.is_some() {
                bail!("--similar/--dissimilar give pairs, which --loss triplet cannot use; give --labels or --triplets");
            }
            let loss = TripletMarginLossConfig::new()
                .with_margin(args.margin.unwrap_or(0.05))
                .with_distance(distance)
                .with_swap(args.swap)
                .with_smooth(args.smooth)
                .with_reducer(reducer)
                .init()
                .map_err(lib)?;
            if let Some(path) = &args.triplets {
                let t = read_index_rows(path, 3)?;
                let t = Triplets::new(t.iter().map(|r| r[0]).collect(), t.iter().map(|r| r[1]).collect(), t.iter().map(|r| r[2]).collect())
                    .map_err(lib)?;
                t.check(rows, rows).map_err(lib).with_context(|| format!("in {}", path.display()))?;
                if t.is_empty() {
                    bail!("{} holds no triplet", path.display());
                }
                let batch = margin::Batch::triplets(select(x, t.anchor.iter().copied()), select(x, t.positive.iter().copied()), select(x, t.negative.iter().copied()));
                let out = loss.forward(batch, margin::Tuples::All).map_err(lib)?;
                Ok((out, None))
            } else {
                labelled(&loss)
            }
        }
        LossKind::Contrastive => {
            if args.triplets.is_some() {
                bail!("--triplets gives triplets, which --loss contrastive cannot use; give --labels or --similar/--dissimilar");
            }
            if args.swap || args.smooth {
                bail!("--swap and --smooth apply to --loss triplet only");
            }
            if args.margin.is_some() {
                bail!("--margin applies to --loss triplet; the contrastive loss has --pos-margin and --neg-margin");
            }
            let loss = ContrastiveLossConfig::new()
                .with_form(match args.form {
                    FormKind::Linear => ContrastiveForm::Linear,
                    FormKind::Squared => ContrastiveForm::Squared,
                })
                .with_pos_margin(args.pos_margin)
                .with_neg_margin(args.neg_margin)
                .with_distance(distance)
                .with_reducer(reducer)
                .with_pooling(match args.pooling {
                    PoolingKind::Separate => KindPooling::Separate,
                    PoolingKind::Pooled => KindPooling::Pooled,
                })
                .init()
                .map_err(lib)?;
            if let (Some(s), Some(d)) = (&args.similar, &args.dissimilar) {
                let mut pairs = Vec::new();
                for (path, polarity) in [(s, PairPolarity::Similar), (d, PairPolarity::Dissimilar)] {
                    for (i, r) in read_index_rows(path, 2)?.into_iter().enumerate() {
                        if let Some(&bad) = r.iter().find(|&&v| v >= rows) {
                            bail!("{} row {i} has index {bad}, but the embeddings have {rows} rows", path.display());
                        }
                        pairs.push((r[0], r[1], polarity));
                    }
                }
                if pairs.is_empty() {
                    bail!("{} and {} hold no pair", s.display(), d.display());
                }
                let polarity: Vec<PairPolarity> = pairs.iter().map(|p| p.2).collect();
                let batch = margin::Batch::pairs(select(x, pairs.iter().map(|p| p.0)), select(x, pairs.iter().map(|p| p.1)), &polarity);
                let out = loss.forward(batch, margin::Tuples::All).map_err(lib)?;
                Ok((out, None))
            } else {
                labelled(&loss)
            }
        }
        _ => unreachable!("the losses with class parameters are computed by loss_param"),
    }
}

/// Runs `margin loss`.
pub fn run(args: LossArgs) -> Result<()> {
    let (m, stored) = read_matrix(&args.embeddings)?;
    let (rows, dim) = m.dim();
    let dtype = match args.dtype {
        DtypeKind::F32 => DType::F32,
        DtypeKind::F64 => DType::F64,
    };
    if dtype == DType::F64 && !args.device.has_f64() {
        bail!("--dtype f64 is not available on --device {}: WGSL (wgpu's shader language) has no float64; use --dtype f32 or --device cpu", args.device);
    }
    let device = args.device.device()?.autodiff();
    if stored == FloatKind::F64 && dtype == DType::F32 && !args.json {
        eprintln!("note: {} holds float64; computing in f32 (--dtype f64 keeps full precision)", args.embeddings.display());
    }
    let flat: Vec<f64> = m.iter().copied().collect();
    if dtype == DType::F32
        && let Some(i) = flat.iter().position(|v| v.is_finite() && v.abs() > f32::MAX as f64)
    {
        bail!(
            "{}: row {}, column {} is {:e}, beyond the range of f32 (the computation's --dtype); use --dtype f64",
            args.embeddings.display(),
            i / dim.max(1),
            i % dim.max(1),
            flat[i]
        );
    }
    let x = Tensor::<2>::from_data(TensorData::new(flat, [rows, dim]), (&device, dtype)).require_grad();
    let Computed { out, mined, param } = compute(&args, &x).with_context(|| format!("computing the loss on {}", args.embeddings.display()))?;
    if !out.stats.loss.is_finite() {
        bail!(
            "the loss on {} is {} although every embedding is finite: its distances overflow {:?}; scale the embeddings down or use --dtype f64",
            args.embeddings.display(),
            out.stats.loss,
            dtype
        );
    }
    if let (Some(path), Some(m)) = (&args.mined_out, &mined) {
        let rows = m.to_rows();
        let width = if matches!(m, margin::Mined::Pairs(_)) { 4 } else { 3 };
        let flat: Vec<i64> = rows.into_iter().flatten().collect();
        write_matrix(path, &Array2::from_shape_vec((flat.len() / width, width), flat)?)?;
    }
    let write = |path: &std::path::Path, values: Vec<f64>, (r, c): (usize, usize)| -> Result<()> {
        match args.dtype {
            DtypeKind::F32 => write_matrix(path, &Array2::from_shape_vec((r, c), values.iter().map(|&v| v as f32).collect())?),
            DtypeKind::F64 => write_matrix(path, &Array2::from_shape_vec((r, c), values)?),
        }
    };
    let param_grad_out = args.param.param_grad_out.as_ref().filter(|_| param.is_some());
    if let Some((p, info)) = &param
        && let Some(path) = &args.param.params_out
    {
        write(path, margin::to_host(p), (info.shape[0], info.shape[1]))?;
    }
    if args.grad_out.is_some() || param_grad_out.is_some() {
        let grads = out.loss.backward();
        if let Some(path) = &args.grad_out {
            let g = margin::to_host(&x.grad(&grads).context("the embeddings received no gradient")?);
            if let Some(i) = g.iter().position(|v| !v.is_finite()) {
                bail!("the gradient of row {} is {} (not written to {}): the embeddings are too large for {:?}; use --dtype f64", i / dim.max(1), g[i], path.display(), dtype);
            }
            write(path, g, (rows, dim))?;
        }
        if let (Some(path), Some((p, info))) = (param_grad_out, &param) {
            let g = margin::to_host(&p.grad(&grads).with_context(|| format!("the {} received no gradient", info.name))?);
            if let Some(i) = g.iter().position(|v| !v.is_finite()) {
                bail!("the gradient of {} row {} is {} (not written to {}): use --dtype f64", info.name, i / dim.max(1), g[i], path.display());
            }
            write(path, g, (info.shape[0], info.shape[1]))?;
        }
    }
    let (distance, reducer) = match param {
        // Cosine between L2-normalised rows and parameters; the mean over rows (PML's MeanReducer).
        Some(_) => (margin::Distance::from_name("cosine", true).expect("a distance name").describe(), format!("{:?}", Reducer::Mean)),
        None => (distance(&args)?.describe(), format!("{:?}", reducer(&args)?)),
    };
    let report = Report {
        loss_function: super::loss_param::spec_kind(args.loss),
        distance,
        reducer,
        rows,
        dim,
        dtype: format!("{:?}", args.dtype).to_lowercase(),
        stats: out.stats,
        miner: args.miner.map(|k| k.to_possible_value().expect("no skipped variants").get_name().to_string()),
        mined: mined.as_ref().map(margin::Mined::len),
        miner_stats: mined.as_ref().map(|m| *m.stats()),
        grad_out: args.grad_out.clone(),
        parameters: param.map(|(_, info)| info),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let s = &report.stats;
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.6}"));
        println!("{} loss on {} × {} embeddings ({}, {}, {})", report.loss_function, rows, dim, report.distance, report.reducer, report.dtype);
        println!("  loss            {:.9}", s.loss);
        if let (Some(name), Some(n)) = (&report.miner, report.mined) {
            println!("  miner           {name}: {n} tuples mined");
        }
        println!("  tuples          {}", s.num_tuples);
        println!("  active          {} ({:.1}%)", s.num_active, 100.0 * s.active_fraction);
        if report.parameters.is_some() {
            // The loss's own statistic: cosine similarities (Proxy-NCA: squared distances) to the row's class and to the others.
            println!("  mean own class  {}", opt(s.mean_ap_dist));
            println!("  mean others     {}", opt(s.mean_an_dist));
        } else {
            println!("  mean d(a, p)    {}", opt(s.mean_ap_dist));
            println!("  mean d(a, n)    {}", opt(s.mean_an_dist));
        }
        if let Some(p) = &args.mined_out {
            println!("  mined tuples    written to {}", p.display());
        }
        if let Some(p) = &report.parameters {
            println!("  {:<15} [{}, {}] for {} classes, {}", p.name, p.shape[0], p.shape[1], p.num_classes, p.source);
            if let Some(path) = &p.params_out {
                println!("  {:<15} written to {}", p.name, path.display());
            }
            if let Some(path) = &p.param_grad_out {
                println!("  ∂/∂{:<12} written to {}", p.name, path.display());
            }
        }
        if let Some(p) = &args.grad_out {
            println!("  gradient        written to {}", p.display());
        }
        if s.num_tuples > 0 && s.active_fraction < 0.01 {
            println!("  warning: almost no tuple violates the margin: no gradient to learn from (margin too small, or mining too easy)");
        }
    }
    Ok(())
}
