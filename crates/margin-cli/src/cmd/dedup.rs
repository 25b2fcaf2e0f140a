//! `margin dedup`: groups of near-duplicates among embeddings, written as `groups.json`
//! (version 1) with an HTML page beside it.
//!
//! **Threshold.** With `--model RUN` and no flag, the model card's own dedup threshold
//! (`dedup` section: an item against its augmented, re-encoded copy, against different
//! items, at the strictest estimable false-duplicate rate; margin-train's
//! `dedup_calibrate`); `--far F` groups at the identity-level threshold of that FAR
//! instead, `--threshold T` at an explicit distance. The output says which.
//!
//! The grouping is margin-search's ([`margin_search::dedup`]: greedy representatives over
//! each item's k nearest neighbours, items in input order, the rule written into the file).
//! The neighbours come from an in-memory index of the chosen kind (`--kind auto`: exact up
//! to 50,000 items, HNSW beyond), so the cost is one batched kNN search, not all pairs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use margin_search::dedup::{Groups, group};
use margin_search::{HnswParams, Metric, Precision, Rows, Spec};

use super::index::{Kind, add_with_progress, new_index};
use super::threshold::{ThresholdArgs, required, resolve};
use super::model_input::{ModelArgs, load};

/// Arguments of `margin dedup`.
#[derive(clap::Args, Debug)]
pub struct DedupArgs {
    /// Embeddings of the items (.npy, rows × dim).
    #[arg(long, value_name = "E.npy", required_unless_present = "model")]
    pub embeddings: Option<PathBuf>,
    /// Embed the items with a model first (ids: the input's image paths, or `FILE:LINE`
    /// of a text input with a sentence-transformers folder; the page shows the texts).
    #[command(flatten)]
    pub source: ModelArgs,
    /// The items' ids, one per line (file paths of images show as thumbnails in the HTML
    /// page); default: row numbers.
    #[arg(long, value_name = "ids.txt")]
    pub ids: Option<PathBuf>,
    /// Where to write the groups (JSON, atomically); the HTML page goes beside it
    /// (same name, `.html`).
    #[arg(long, value_name = "groups.json")]
    pub out: PathBuf,
    /// Distance: euclidean (l2), squared-euclidean, cosine, dot.
    #[arg(long, default_value = "euclidean", value_parser = parse_metric)]
    pub metric: Metric,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    /// Neighbours looked at per item (representatives beyond them are not found).
    #[arg(short, long, default_value_t = 16, value_parser = crate::flags::count)]
    pub k: usize,
    /// Index used for the neighbour search.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    pub kind: Kind,
    /// HNSW beam width of the neighbour search.
    #[arg(long, default_value_t = 64, value_parser = crate::flags::count)]
    pub ef: usize,
    /// Folder that relative image paths in the ids are resolved against (default: the
    /// current folder).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    margin_search::parse_metric(s).map_err(|e| e.to_string())
}

/// Runs `margin dedup`.
pub fn run(a: DedupArgs) -> Result<()> {
    let v = load(a.embeddings.as_deref(), a.ids.as_deref(), &a.source, "--embeddings")?;
    let card = v.card_thresholds(a.metric);
    let flags = resolve(&a.threshold, card.as_ref().map(|c| c as &dyn super::threshold::CardThresholds))?;
    let t = match (flags, &card) {
        (Some(t), _) => t,
        // No flag: the card's own near-duplicate threshold.
        (None, Some(c)) => c.dedup()?,
        (None, None) => required(None, None, "margin dedup")?,
    };
    let (input, data, n, dim, ids) = (v.input.clone(), &v.data, v.n, v.dim, v.ids.clone());
    let started = std::time::Instant::now();
    let spec = Spec { metric: a.metric, dim, precision: Precision::F32, fingerprint: String::new(), tagged: false };
    let mut index = new_index(a.kind, n, &spec, HnswParams::default())?;
    let names = ids.names().to_vec();
    add_with_progress(index.as_index_mut(), &input, data, dim, ids, None, a.quiet)?;
    let (assignment, _) = group(index.as_index(), Rows::new(&input, data, dim), a.k, a.ef, t.value)?;
    let groups = Groups::new(&assignment, &names, t.value, &t.source, a.metric.name(), a.k.min(n));
    let json = serde_json::to_vec_pretty(&groups)?;
    margin_data::atomic::write_atomic(&a.out, &json).with_context(|| format!("writing {}", a.out.display()))?;
    let html_path = a.out.with_extension("html");
    let root = a.root.clone().or(v.root.clone()).unwrap_or_else(|| PathBuf::from("."));
    let texts: Option<std::collections::HashMap<&str, &str>> = v.texts.as_ref().map(|t| names.iter().map(String::as_str).zip(t.iter().map(String::as_str)).collect());
    let page = super::dedup_html::page(&groups, &root, texts.as_ref());
    margin_data::atomic::write_atomic(&html_path, page.html.as_bytes()).with_context(|| format!("writing {}", html_path.display()))?;
    let in_groups: usize = groups.groups.iter().map(|g| 1 + g.members.len()).sum();
    println!(
        "{n} items: {} groups of near-duplicates ({in_groups} items), {} singletons, at threshold {} (from {}), in {:.1} s → {}, {}",
        groups.groups.len(),
        groups.singletons,
        t.value,
        t.source,
        started.elapsed().as_secs_f64(),
        a.out.display(),
        html_path.display()
    );
    if page.thumbnails == 0 && v.texts.is_none() {
        println!("the HTML page lists ids as text (no id is a PNG/JPEG file under {} of at most {} KiB)", root.display(), super::dedup_html::MAX_INLINE / 1024);
    }
    Ok(())
}
