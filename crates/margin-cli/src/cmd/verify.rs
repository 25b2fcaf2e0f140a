//! `margin verify`: same or different? The distance between two items, the decision at a
//! threshold, the threshold and where it came from.
//!
//! Items are rows of `--embeddings`, named by their ids (`--ids`) or row numbers: two on
//! the command line, or pairs from `--pairs pairs.csv` (two columns of items; a first row
//! naming no item is a header). Distances follow margin-search's convention
//! (`margin_search::metric::distance`: smaller is closer, `−dot` for dot); a pair matches at
//! `distance <= threshold`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};


use anyhow::{Context, Result, bail};
use margin_search::Metric;
use serde::Serialize;

use super::threshold::{Threshold, ThresholdArgs, required, resolve};
use super::model_input::{ModelArgs, load};

/// Arguments of `margin verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Precomputed embeddings holding the items (.npy, rows × dim).
    #[arg(long, value_name = "E.npy", required_unless_present = "model")]
    pub embeddings: Option<PathBuf>,
    /// Embed the items with a model first (items are then the input's image paths).
    #[command(flatten)]
    pub source: ModelArgs,
    /// The rows' ids (one per line); default: row numbers.
    #[arg(long, value_name = "ids.txt")]
    pub ids: Option<PathBuf>,
    /// The two items to compare (ids, or row numbers without --ids).
    #[arg(value_name = "ITEM", num_args = 0..=2)]
    pub items: Vec<String>,
    /// Pairs to compare: a CSV of two columns of items.
    #[arg(long, value_name = "pairs.csv", conflicts_with = "items")]
    pub pairs: Option<PathBuf>,
    /// Distance: euclidean (l2), squared-euclidean, cosine, dot.
    #[arg(long, default_value = "euclidean", value_parser = parse_metric)]
    pub metric: Metric,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    /// JSON output: one object per pair, one per line.
    #[arg(long)]
    pub json: bool,
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    margin_search::parse_metric(s).map_err(|e| e.to_string())
}

/// One decision.
#[derive(Serialize, Debug, PartialEq)]
pub struct Decision {
    /// First item.
    pub a: String,
    /// Second item.
    pub b: String,
    /// Their distance.
    pub distance: f64,
    /// `distance <= threshold`.
    #[serde(rename = "match")]
    pub is_match: bool,
    /// The threshold.
    pub threshold: f32,
    /// Where it came from.
    pub threshold_source: String,
}

/// Reads the pairs file: rows of two items; a first row whose cells are both unknown items
/// is a header. Every other row must name two known items (its line is named otherwise).
pub fn read_pairs(path: &Path, known: &dyn Fn(&str) -> bool) -> Result<Vec<(String, String)>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_path(path).with_context(|| format!("reading --pairs {}", path.display()))?;
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("--pairs {}: line {}", path.display(), i + 1))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != 2 {
            bail!("--pairs {}: line {}: {} columns (two items per row expected)", path.display(), i + 1, rec.len());
        }
        let (a, b) = (rec[0].to_string(), rec[1].to_string());
        if i == 0 && !known(&a) && !known(&b) {
            continue;
        }
        for x in [&a, &b] {
            if !known(x) {
                bail!("--pairs {}: line {}: {x:?} is not an item of the embeddings (not one of their ids)", path.display(), i + 1);
            }
        }
        out.push((a, b));
    }
    if out.is_empty() {
        bail!("--pairs {} holds no pairs", path.display());
    }
    Ok(out)
}

/// The decisions for `pairs` of rows (`row(name)` → the row's values).
pub fn decide<'a>(pairs: &[(String, String)], row: &dyn Fn(&str) -> &'a [f32], metric: Metric, t: &Threshold) -> Vec<Decision> {
    pairs
        .iter()
        .map(|(a, b)| {
            let d = margin_search::metric::distance(metric, row(a), row(b));
            Decision { a: a.clone(), b: b.clone(), distance: d, is_match: d <= f64::from(t.value), threshold: t.value, threshold_source: t.source.clone() }
        })
        .collect()
}

/// Prints the decisions.
pub fn print(ds: &[Decision], json: bool, t: &Threshold) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        for d in ds {
            serde_json::to_writer(&mut out, d)?;
            writeln!(out)?;
        }
    } else {
        writeln!(out, "threshold {} (from {}): same at distance <= {}", t.value, t.source, t.value)?;
        for d in ds {
            writeln!(out, "{}  {}  distance {:.6}  {}", d.a, d.b, d.distance, if d.is_match { "same" } else { "different" })?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Runs `margin verify`.
pub fn run(a: VerifyArgs) -> Result<()> {
    let v = load(a.embeddings.as_deref(), a.ids.as_deref(), &a.source, "--embeddings")?;
    let (input, data, dim, ids) = (v.input.clone(), &v.data, v.dim, v.ids.clone());
    margin_search::Rows::new(&input, data, dim).check(dim)?;
    let slot: HashMap<&str, usize> = ids.names().iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let card = v.card_thresholds(a.metric);
    let chosen = resolve(&a.threshold, card.as_ref().map(|c| c as &dyn super::threshold::CardThresholds))?;
    let t = required(chosen, card.as_ref().and_then(|c| c.eer()), "margin verify")?;
    let pairs = match (&a.pairs, a.items.as_slice()) {
        (Some(p), _) => read_pairs(p, &|s| slot.contains_key(s))?,
        (None, [x, y]) => {
            for s in [x, y] {
                if !slot.contains_key(s.as_str()) {
                    let what = if ids.input() != "row numbers" { "ids" } else { "row numbers (no --ids given)" };
                    bail!("{s:?} is not an item of {input} (items are named by their {what})");
                }
            }
            vec![(x.clone(), y.clone())]
        }
        _ => bail!("give two items (margin verify --embeddings E.npy A B) or --pairs pairs.csv"),
    };
    let row = |s: &str| {
        let i = slot[s];
        &data[i * dim..(i + 1) * dim]
    };
    print(&decide(&pairs, &row, a.metric, &t), a.json, &t)
}
