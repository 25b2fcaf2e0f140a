//! `margin loss`'s miner: from `--miner NAME` and its flags, or from `--miner-table`
//! (the config file's `[train.miner]` table), built by `MinerSpec::build` — the rule
//! `margin train` follows (the loss's distance unless the miner sets its own).

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use margin::miner::{MiningStrategy, SemiHardFallback, TripletType, ValueRange};
use margin::{Distance, DotProductSimilarity, LpDistance, MinerConfig};
use margin_train::MinerSpec;

use super::loss::{FallbackArg, LossArgs, StrategyArg, TripletTypeArg, distance, distance_of};

/// The miner named by `--miner`, with every given flag applied; flags that belong to
/// another miner are refused rather than silently ignored. It mines on the loss's distance
/// unless --miner-distance / --miner-normalize give it its own (`MinerSpec::build`, the rule
/// `margin train` follows).
pub(super) fn miner(args: &LossArgs) -> Result<Option<MinerConfig>> {
    if let Some(table) = &args.miner_table {
        return miner_from_table(args, table);
    }
    let Some(kind) = args.miner else {
        if let Some(flag) = given_miner_flag(args) {
            bail!("{flag} configures a miner; add --miner NAME");
        }
        return Ok(None);
    };
    let name = kind.to_possible_value().expect("no skipped variants").get_name().to_string();
    let mut cfg = MinerConfig::default_for(&name).expect("every --miner value names a miner");
    let refuse = |flag: &str| -> Result<()> { bail!("{flag} does not apply to --miner {name}") };
    let strategy = |s: StrategyArg| match s {
        StrategyArg::Easy => MiningStrategy::Easy,
        StrategyArg::Semihard => MiningStrategy::Semihard,
        StrategyArg::Hard => MiningStrategy::Hard,
        StrategyArg::All => MiningStrategy::All,
    };
    let range = |r: &Option<Vec<f64>>| r.as_ref().map(|v| ValueRange { low: v[0], high: v[1] });
    match &mut cfg {
        MinerConfig::TripletMargin(m) => {
            if let Some(v) = args.miner_margin {
                m.margin = v;
            }
            if let Some(t) = args.miner_type {
                m.kind = match t {
                    TripletTypeArg::All => TripletType::All,
                    TripletTypeArg::Hard => TripletType::Hard,
                    TripletTypeArg::Semihard => TripletType::Semihard,
                    TripletTypeArg::Easy => TripletType::Easy,
                };
            }
        }
        _ if args.miner_margin.is_some() => refuse("--miner-margin")?,
        _ if args.miner_type.is_some() => refuse("--miner-type")?,
        _ => {}
    }
    match &mut cfg {
        MinerConfig::BatchEasyHard(m) => {
            if let Some(v) = args.pos_strategy {
                m.pos_strategy = strategy(v);
            }
            if let Some(v) = args.neg_strategy {
                m.neg_strategy = strategy(v);
            }
            m.allowed_pos_range = range(&args.allowed_pos_range).or(m.allowed_pos_range);
            m.allowed_neg_range = range(&args.allowed_neg_range).or(m.allowed_neg_range);
        }
        _ if args.pos_strategy.is_some() => refuse("--pos-strategy")?,
        _ if args.neg_strategy.is_some() => refuse("--neg-strategy")?,
        _ if args.allowed_pos_range.is_some() => refuse("--allowed-pos-range")?,
        _ if args.allowed_neg_range.is_some() => refuse("--allowed-neg-range")?,
        _ => {}
    }
    match &mut cfg {
        MinerConfig::SemihardFacenet(m) => {
            if let Some(f) = args.fallback {
                m.fallback = match f {
                    FallbackArg::Tensorflow => SemiHardFallback::Tensorflow,
                    FallbackArg::Hardest => SemiHardFallback::Hardest,
                };
            }
        }
        _ if args.fallback.is_some() => refuse("--fallback")?,
        _ => {}
    }
    match &mut cfg {
        MinerConfig::PairMargin(m) => {
            m.pos_margin = args.miner_pos_margin.unwrap_or(m.pos_margin);
            m.neg_margin = args.miner_neg_margin.unwrap_or(m.neg_margin);
        }
        _ if args.miner_pos_margin.is_some() => refuse("--miner-pos-margin")?,
        _ if args.miner_neg_margin.is_some() => refuse("--miner-neg-margin")?,
        _ => {}
    }
    match &mut cfg {
        MinerConfig::MultiSimilarity(m) => m.epsilon = args.epsilon.unwrap_or(m.epsilon),
        _ if args.epsilon.is_some() => refuse("--epsilon")?,
        _ => {}
    }
    match &mut cfg {
        MinerConfig::DistanceWeighted(m) => {
            m.cutoff = args.cutoff.unwrap_or(m.cutoff);
            m.nonzero_loss_cutoff = args.nonzero_loss_cutoff.unwrap_or(m.nonzero_loss_cutoff);
            if args.miner_distance.is_some() || args.miner_normalize.is_some() {
                refuse("--miner-distance/--miner-normalize (it needs normalised euclidean)")?;
            }
        }
        _ if args.cutoff.is_some() => refuse("--cutoff")?,
        _ if args.nonzero_loss_cutoff.is_some() => refuse("--nonzero-loss-cutoff")?,
        _ => {}
    }
    let loss_distance = distance(args)?;
    let own = match (args.miner_distance, args.miner_normalize) {
        (Some(kind), n) => Some(distance_of(kind, n.unwrap_or(true))?),
        (None, Some(n)) => Some(match loss_distance {
            Distance::Lp(lp) => Distance::Lp(LpDistance { normalize: n, ..lp }),
            Distance::Dot(_) => Distance::Dot(DotProductSimilarity { normalize: n }),
            Distance::Cosine(_) if !n => bail!("--miner-normalize false: the loss's cosine similarity always normalises; add --miner-distance dot"),
            d => d,
        }),
        (None, None) => None,
    };
    let spec = MinerSpec { miner: Some(cfg), distance: own };
    let built = spec.build(loss_distance).map_err(|e| anyhow::anyhow!(e)).with_context(|| format!("--miner {name}"))?;
    Ok(built)
}

/// The first per-miner flag given, if any (they belong to `--miner NAME`).
fn given_miner_flag(args: &LossArgs) -> Option<&'static str> {
    let flags = [
        ("--miner-distance", args.miner_distance.is_some()),
        ("--miner-normalize", args.miner_normalize.is_some()),
        ("--miner-margin", args.miner_margin.is_some()),
        ("--miner-type", args.miner_type.is_some()),
        ("--pos-strategy", args.pos_strategy.is_some()),
        ("--neg-strategy", args.neg_strategy.is_some()),
        ("--allowed-pos-range", args.allowed_pos_range.is_some()),
        ("--allowed-neg-range", args.allowed_neg_range.is_some()),
        ("--fallback", args.fallback.is_some()),
        ("--miner-pos-margin", args.miner_pos_margin.is_some()),
        ("--miner-neg-margin", args.miner_neg_margin.is_some()),
        ("--epsilon", args.epsilon.is_some()),
        ("--cutoff", args.cutoff.is_some()),
        ("--nonzero-loss-cutoff", args.nonzero_loss_cutoff.is_some()),
    ];
    flags.iter().find(|f| f.1).map(|f| f.0)
}

/// `--miner-table`: the `[train.miner]` table of a config file, parsed by the same
/// `MinerSpec` and built by the same rule (`MinerSpec::build`). The per-miner flags belong to
/// `--miner` and are refused here.
fn miner_from_table(args: &LossArgs, table: &str) -> Result<Option<MinerConfig>> {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        miner: MinerSpec,
    }
    if let Some(flag) = given_miner_flag(args) {
        bail!("{flag} is a --miner flag; with --miner-table write the parameter into the table");
    }
    let w: Wrapper = toml::from_str(&format!("miner = {{ {table} }}")).map_err(|e| anyhow::anyhow!("--miner-table {table:?}: {e}"))?;
    w.miner.build(distance(args)?).map_err(|e| anyhow::anyhow!(e)).with_context(|| format!("--miner-table {table:?}"))
}
