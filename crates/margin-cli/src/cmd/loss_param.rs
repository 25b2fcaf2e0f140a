//! `margin loss` for the losses with class parameters: ArcFace, CosFace, the normalised
//! softmax, Proxy-Anchor, Proxy-NCA and SoftTriple.
//!
//! The loss is what `margin train` would build: the flags become the config file's
//! `[train.loss]` table, parsed by margin-train's serde-tagged `LossSpec` (so PML's defaults
//! and every field's check live in one place, not here), and built by the trainer's
//! `ParamLoss` for `C` classes of the embeddings' dimension. The parameters (`[C·K, d]`
//! rows: one per class, SoftTriple's `K` per class, class-major) are either read from
//! `--params FILE` (its shape checked against the loss and the embeddings, naming the file)
//! or drawn from `--seed N` exactly as a run with `seed = N` draws them
//! (`param_loss::init_seeded`, [`margin::param_rng`]). Labels are class indices into those
//! rows (`0..C`). One of the two is required: a loss value on parameters nobody chose would
//! be a made-up result.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use margin::burn::tensor::{DType, Tensor, TensorData};
use margin::{LossOutput, Tuples};
use margin_train::LossSpec;
use margin_train::param_loss::{self, ParamLoss};
use serde::Serialize;

use super::loss::{DistanceKind, FormKind, LossArgs, LossKind, PoolingKind, ReducerKind};
use crate::npy::{read_labels, read_matrix};

/// The options of the losses with class parameters (PML's defaults: margin-train's `LossSpec`).
#[derive(Args, Debug, Clone, Default)]
pub struct ParamArgs {
    /// arcface, cosface: the scale s (default 64).
    #[arg(long, value_parser = crate::flags::positive)]
    pub scale: Option<f64>,
    /// normalized-softmax: the temperature τ, logits cos / τ (default 0.05).
    #[arg(long, value_parser = crate::flags::positive)]
    pub temperature: Option<f64>,
    /// proxy-anchor: the scale α (default 32).
    #[arg(long, value_parser = crate::flags::positive)]
    pub alpha: Option<f64>,
    /// proxy-nca: the softmax scale of the negated squared distances (default 1).
    #[arg(long, value_parser = crate::flags::positive)]
    pub softmax_scale: Option<f64>,
    /// soft-triple: centres per class K (default 10).
    #[arg(long, value_parser = crate::flags::count)]
    pub centers_per_class: Option<usize>,
    /// soft-triple: the scale λ (PML's `la`, default 20).
    #[arg(long, value_parser = crate::flags::positive)]
    pub la: Option<f64>,
    /// soft-triple: the temperature γ of the softmax over a class's centres (default 0.1).
    #[arg(long, value_parser = crate::flags::positive)]
    pub gamma: Option<f64>,
    /// The classes C the loss holds parameters for (labels are 0..C). Default: with --params
    /// its rows / K; with --seed the largest label + 1.
    #[arg(long, value_parser = crate::flags::batch)]
    pub num_classes: Option<usize>,
    /// The loss's parameters (.npy float32/float64, margin's layout `[C·K, d]`: one row per
    /// class — ArcFace/CosFace/normalised-softmax class weights (PML's `W` transposed),
    /// Proxy-Anchor/Proxy-NCA proxies — or SoftTriple's K centres per class, class c's centre
    /// k at row c·K + k (PML's `fc` transposed)). Else --seed N draws them as `margin train`
    /// with `seed = N` does.
    #[arg(long, value_name = "FILE", conflicts_with = "seed")]
    pub params: Option<PathBuf>,
    /// Write the parameters used here (.npy, the computation's dtype; with --seed, the drawn ones).
    #[arg(long, value_name = "FILE")]
    pub params_out: Option<PathBuf>,
    /// Write d loss / d parameters here (.npy `[C·K, d]`, same dtype as --dtype).
    #[arg(long, value_name = "FILE")]
    pub param_grad_out: Option<PathBuf>,
}

impl ParamArgs {
    /// The first option of this group that was given, if any (they need a parametric --loss).
    pub(super) fn given(&self) -> Option<&'static str> {
        let flags = [
            ("--scale", self.scale.is_some()),
            ("--temperature", self.temperature.is_some()),
            ("--alpha", self.alpha.is_some()),
            ("--softmax-scale", self.softmax_scale.is_some()),
            ("--centers-per-class", self.centers_per_class.is_some()),
            ("--la", self.la.is_some()),
            ("--gamma", self.gamma.is_some()),
            ("--num-classes", self.num_classes.is_some()),
            ("--params", self.params.is_some()),
            ("--params-out", self.params_out.is_some()),
            ("--param-grad-out", self.param_grad_out.is_some()),
        ];
        flags.iter().find(|f| f.1).map(|f| f.0)
    }
}

/// What the report says about the parameters.
#[derive(Serialize, Debug, Clone)]
pub(super) struct ParamInfo {
    /// PML's name for them (class weights, proxies, centers).
    pub name: &'static str,
    /// `C`.
    pub num_classes: usize,
    /// `[C·K, d]`.
    pub shape: [usize; 2],
    /// The file they were read from, or the seed they were drawn from.
    pub source: String,
    /// Where `--params-out` wrote them.
    pub params_out: Option<PathBuf>,
    /// Where `--param-grad-out` wrote their gradient.
    pub param_grad_out: Option<PathBuf>,
}

/// A computed parametric loss: its output, the parameter tensor (for its gradient) and the report's part.
pub(super) struct ParamRun {
    pub out: LossOutput,
    pub params: Tensor<2>,
    pub info: ParamInfo,
}

/// The `--loss` name as the command line spells it.
fn flag_name(kind: LossKind) -> String {
    kind.to_possible_value().expect("no skipped variants").get_name().to_string()
}

/// `[train.loss] kind` of a parametric `--loss` (the CLI's kebab-case, the config's snake_case).
pub(super) fn spec_kind(kind: LossKind) -> String {
    flag_name(kind).replace('-', "_")
}

/// The flags of the stateless losses, refused here rather than silently ignored (those with
/// a default are refused when they differ from it).
fn refuse_stateless_flags(args: &LossArgs) -> Result<()> {
    let name = flag_name(args.loss);
    // A miner flag without --miner is refused by the miner's own rule first.
    super::loss_miner::miner(args)?;
    let given = [
        ("--triplets", args.triplets.is_some()),
        ("--similar/--dissimilar", args.similar.is_some() || args.dissimilar.is_some()),
        ("--miner", args.miner.is_some() || args.miner_table.is_some()),
        ("--mined-out", args.mined_out.is_some()),
        ("--swap", args.swap),
        ("--smooth", args.smooth),
        ("--distance", args.distance != DistanceKind::Euclidean),
        ("--normalize", !args.normalize),
        ("--reducer", args.reducer != ReducerKind::AvgNonZero),
        ("--threshold-low/--threshold-high", args.threshold_low.is_some() || args.threshold_high.is_some()),
        ("--pos-margin", args.pos_margin != 0.0),
        ("--neg-margin", args.neg_margin != 1.0),
        ("--form", args.form != FormKind::Linear),
        ("--pooling", args.pooling != PoolingKind::Separate),
    ];
    if let Some((flag, _)) = given.iter().find(|f| f.1) {
        bail!(
            "{flag} does not apply to --loss {name}: it compares every row with its class parameters by cosine similarity (mean over rows, PML's reducer), with --labels and no tuples or miner"
        );
    }
    Ok(())
}

/// The `[train.loss]` table the flags describe, parsed by `LossSpec` (PML's defaults for
/// what is not given); a flag of another loss is refused by name.
pub(super) fn spec(args: &LossArgs) -> Result<LossSpec> {
    let name = flag_name(args.loss);
    let p = &args.param;
    let margin_field = if args.loss == LossKind::Arcface { "margin_degrees" } else { "margin" };
    let float = |v: Option<f64>| v.map(toml::Value::Float);
    let given: [(&str, &str, Option<toml::Value>); 8] = [
        ("--margin", margin_field, float(args.margin)),
        ("--scale", "scale", float(p.scale)),
        ("--temperature", "temperature", float(p.temperature)),
        ("--alpha", "alpha", float(p.alpha)),
        ("--softmax-scale", "softmax_scale", float(p.softmax_scale)),
        ("--centers-per-class", "centers_per_class", p.centers_per_class.map(|k| toml::Value::Integer(i64::try_from(k).unwrap_or(i64::MAX)))),
        ("--la", "la", float(p.la)),
        ("--gamma", "gamma", float(p.gamma)),
    ];
    let accepts: &[&str] = match args.loss {
        LossKind::Arcface | LossKind::Cosface => &["--margin", "--scale"],
        LossKind::NormalizedSoftmax => &["--temperature"],
        LossKind::ProxyAnchor => &["--margin", "--alpha"],
        LossKind::ProxyNca => &["--softmax-scale"],
        LossKind::SoftTriple => &["--margin", "--centers-per-class", "--la", "--gamma"],
        LossKind::Triplet | LossKind::Contrastive => unreachable!("called for the parametric losses only"),
    };
    let mut table = toml::Table::new();
    table.insert("kind".into(), toml::Value::String(spec_kind(args.loss)));
    for (flag, field, value) in given {
        let Some(value) = value else { continue };
        if !accepts.contains(&flag) {
            bail!("{flag} does not apply to --loss {name} (its options: {})", accepts.join(", "));
        }
        table.insert(field.into(), value);
    }
    let spec: LossSpec = toml::Value::Table(table).try_into().with_context(|| format!("--loss {name}"))?;
    margin_train::param_loss::validate(&spec).map_err(|e| anyhow::anyhow!(e)).with_context(|| format!("--loss {name}"))?;
    Ok(spec)
}

/// The parameters as host values `[C·K, d]` and `C`: read from `--params` (shape checked) or
/// drawn from `--seed` as a run would.
fn parameters(args: &LossArgs, spec: &LossSpec, labels: &[i64], dim: usize, dtype: DType) -> Result<(Vec<f64>, usize, String)> {
    let name = flag_name(args.loss);
    let what = param_loss::params_name(spec).expect("a parametric loss");
    let k = param_loss::rows_per_class(spec);
    let per = if k == 1 { String::new() } else { format!(" ({k} centres per class, class-major)") };
    match (&args.param.params, args.seed) {
        (Some(path), _) => {
            let (m, _) = read_matrix(path)?;
            let (rows, cols) = m.dim();
            let shape = format!("{} holds {what} of shape [{rows}, {cols}]", path.display());
            if cols != dim {
                bail!("{shape}, but the embeddings have {dim} columns: --loss {name} needs [C·K, {dim}]{per}");
            }
            if rows == 0 || rows % k != 0 {
                bail!("{shape}: --loss {name} needs C·{k} rows for C classes{per}");
            }
            let c = rows / k;
            if let Some(n) = args.param.num_classes
                && n != c
            {
                bail!("{shape}, but --num-classes {n} needs [{}, {dim}]{per}", n * k);
            }
            let values: Vec<f64> = m.iter().copied().collect();
            if dtype == DType::F32
                && let Some(i) = values.iter().position(|v| v.is_finite() && v.abs() > f32::MAX as f64)
            {
                bail!("{}: row {}, column {} is {:e}, beyond the range of f32 (the computation's --dtype); use --dtype f64", path.display(), i / dim, i % dim, values[i]);
            }
            Ok((values, c, path.display().to_string()))
        }
        (None, Some(seed)) => {
            let (c, why) = match args.param.num_classes {
                Some(c) => (c, "--num-classes".to_string()),
                None => {
                    let max = labels.iter().copied().filter(|&l| l >= 0).max().unwrap_or(0);
                    (usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1), format!("the largest label {max} + 1; --num-classes sets it"))
                }
            };
            // Drawn as f32, held as f64 on the host and in the tensor, and its gradient.
            let n = param_loss::parameter_count(spec, c, dim);
            margin_data::memory::Budget::new()
                .add(format!("the loss's {what} ({c} classes × {k} × {dim})"), n, 4 + 8 * 3)
                .check("margin loss", "lower --num-classes (or the labels)")?;
            let drawn = param_loss::init_seeded(spec, seed, c, dim, &margin::burn::tensor::Device::flex())
                .map_err(|e| anyhow::anyhow!(e))
                .with_context(|| format!("drawing the {what} of --loss {name} for {c} classes ({why}) of dimension {dim}"))?;
            Ok((drawn.param_values(), c, format!("drawn from --seed {seed} (as `margin train` with seed = {seed})")))
        }
        (None, None) => bail!(
            "--loss {name} compares each row with the {what} of its class: give them (--params FILE, [C·K, d] .npy){per} or draw them as `margin train` does (--seed N)"
        ),
    }
}

/// The loss of a labelled batch `x` under a parametric `--loss`.
pub(super) fn compute(args: &LossArgs, x: &Tensor<2>) -> Result<ParamRun> {
    refuse_stateless_flags(args)?;
    let name = flag_name(args.loss);
    let Some(labels_path) = &args.labels else {
        bail!("--loss {name} needs --labels (class indices 0..C into its parameters' classes)");
    };
    let labels = read_labels(labels_path)?;
    let spec = spec(args)?;
    let [_, dim] = x.dims();
    let (device, dtype) = (x.device(), x.dtype());
    let (values, c, source) = parameters(args, &spec, &labels, dim, dtype)?;
    let rows = values.len() / dim.max(1);
    let what = param_loss::params_name(&spec).expect("a parametric loss");
    let t = Tensor::<2>::from_data(TensorData::new(values, [rows, dim]), (&device, dtype)).require_grad();
    let loss = ParamLoss::init_with(&spec, c, dim, t).map_err(|e| anyhow::anyhow!(e)).with_context(|| format!("the {what} of {source}"))?;
    let out = loss
        .as_metric()
        .forward(margin::Batch::labelled(x.clone(), &labels), Tuples::All)
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("{} against {c} classes' {what}", labels_path.display()))?;
    let info = ParamInfo {
        name: what,
        num_classes: c,
        shape: [rows, dim],
        source,
        params_out: args.param.params_out.clone(),
        param_grad_out: args.param.param_grad_out.clone(),
    };
    Ok(ParamRun { out, params: loss.params(), info })
}
