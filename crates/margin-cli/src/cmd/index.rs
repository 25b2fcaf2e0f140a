//! `margin index build|add|remove|info`: a persistent search index over embeddings.
//!
//! A thin layer over margin-search: flags → [`margin_search::Spec`] / [`HnswParams`], files
//! → rows and ids (`cmd/vectors.rs`), and every write through the index's own atomic save,
//! so `add` and `remove` rewrite the file whole or leave the old one untouched.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use margin_search::{AnyIndex, Expect, FlatIndex, HnswIndex, HnswParams, Index, Items, Metric, Precision, Rows, Spec};

use super::model_input::{ModelArgs, load};
use super::vectors::{open_index, read_ids, read_tags};

/// Arguments of `margin index`.
#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: IndexCommand,
}

/// The index subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum IndexCommand {
    /// Build an index from embeddings.
    Build(BuildArgs),
    /// Add items to an index (the file is rewritten atomically).
    Add(AddArgs),
    /// Remove items by id (the file is rewritten atomically).
    Remove(RemoveArgs),
    /// Describe an index.
    Info(InfoArgs),
}

/// Which backend.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Exact up to 50,000 items, HNSW beyond.
    Auto,
    /// Exact search (tiled GEMM): every neighbour is the true one.
    Flat,
    /// Approximate search (HNSW graph).
    Hnsw,
}

/// Items up to which `--kind auto` builds an exact index.
pub const AUTO_FLAT_MAX: usize = 50_000;

/// Arguments of `margin index build`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Embeddings to index (.npy, float32 or float64, rows × dim).
    #[arg(long, value_name = "E.npy", required_unless_present = "model")]
    pub embeddings: Option<PathBuf>,
    /// One id per row (UTF-8 text, one per line); default: row numbers.
    #[arg(long, value_name = "ids.txt")]
    pub ids: Option<PathBuf>,
    #[command(flatten)]
    pub source: ModelArgs,
    /// One tag per row, for `margin search --tag`.
    #[arg(long, value_name = "tags.txt")]
    pub tags: Option<PathBuf>,
    /// The index file to write (atomically).
    #[arg(long, value_name = "INDEX")]
    pub out: PathBuf,
    /// Distance: euclidean (l2), squared-euclidean, cosine, dot.
    #[arg(long, default_value = "euclidean", value_parser = parse_metric)]
    pub metric: Metric,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    pub kind: Kind,
    /// Vector storage of an HNSW index: f32, f16, i8 (the exact index stores f32).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
    /// HNSW links per node (2M on the bottom level).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW beam width while building.
    #[arg(long, default_value_t = 100, value_parser = crate::flags::count)]
    pub ef_construction: usize,
    /// Seed of the HNSW level draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Build threads (0: all; 1: a deterministic graph for the seed).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// The model (and preprocessing) that made the vectors, recorded in the index and
    /// checked on later use; empty: unknown. With --model it is computed.
    #[arg(long, default_value = "", conflicts_with = "model")]
    pub fingerprint: String,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Arguments of `margin index add`.
#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The index file (rewritten atomically unless --out is given).
    #[arg(long, value_name = "INDEX")]
    pub index: PathBuf,
    /// Embeddings to add.
    #[arg(long, value_name = "E.npy", required_unless_present = "model")]
    pub embeddings: Option<PathBuf>,
    /// Their ids (required with --embeddings: row numbers would collide with the existing
    /// items'; with --model the ids are the input's image paths).
    #[arg(long, value_name = "ids.txt", required_unless_present = "model")]
    pub ids: Option<PathBuf>,
    /// Embed the new items with a model first (the index must be of this model: its
    /// fingerprint is checked).
    #[command(flatten)]
    pub source: ModelArgs,
    /// Their tags (required when the index has tags).
    #[arg(long, value_name = "tags.txt")]
    pub tags: Option<PathBuf>,
    /// Write the result here instead of over --index.
    #[arg(long, value_name = "INDEX")]
    pub out: Option<PathBuf>,
}

/// Arguments of `margin index remove`.
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// The index file (rewritten atomically unless --out is given).
    #[arg(long, value_name = "INDEX")]
    pub index: PathBuf,
    /// An id to remove (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub id: Vec<String>,
    /// A file of ids to remove, one per line.
    #[arg(long, value_name = "ids.txt")]
    pub ids: Option<PathBuf>,
    /// Remove the items of this image folder or zip (ids: its image paths) or text file
    /// (`FILE:LINE`), as `index build|add --model RUN --input` named them.
    #[arg(long, value_name = "DIR|ZIP")]
    pub input: Option<PathBuf>,
    /// With --input: the model the index must be of (its fingerprint is checked, so the
    /// paths are removed from the index they were added to).
    #[arg(long, value_name = "RUN", requires = "input")]
    pub model: Option<PathBuf>,
    /// Write the result here instead of over --index.
    #[arg(long, value_name = "INDEX")]
    pub out: Option<PathBuf>,
}

/// Arguments of `margin index info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The index file.
    #[arg(value_name = "INDEX")]
    pub index: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    margin_search::parse_metric(s).map_err(|e| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    Precision::parse(s).map_err(|e| e.to_string())
}

/// Runs `margin index …`.
pub fn run(a: IndexArgs) -> Result<()> {
    match a.command {
        IndexCommand::Build(b) => build(b),
        IndexCommand::Add(b) => add(b),
        IndexCommand::Remove(b) => remove(b),
        IndexCommand::Info(b) => info(b),
    }
}

/// A new, empty index of the chosen kind for `n` items.
pub fn new_index(kind: Kind, n: usize, spec: &Spec, params: HnswParams) -> Result<AnyIndex> {
    let flat = match kind {
        Kind::Auto => n <= AUTO_FLAT_MAX && spec.precision == Precision::F32,
        Kind::Flat => true,
        Kind::Hnsw => false,
    };
    Ok(if flat { AnyIndex::Flat(FlatIndex::new(spec)?) } else { AnyIndex::Hnsw(HnswIndex::new(spec, params)?) })
}

/// Adds `data` in batches, advancing a progress bar on stderr (hidden when not a
/// terminal or `quiet`). The whole input is validated first, so a bad row fails before
/// any work (margin-search validates each batch again, cheaply).
pub fn add_with_progress(index: &mut dyn Index, input: &str, data: &[f32], dim: usize, ids: margin_search::Ids, tags: Option<&[String]>, quiet: bool) -> Result<()> {
    let n = data.len() / dim.max(1);
    let names = ids.names();
    // Validate everything up front: shape, values, ids against the index.
    Rows::new(input, data, dim).check(index.dim())?;
    for (row, id) in names.iter().enumerate() {
        if index.slot_of(id).is_some() {
            bail!("{input}: id {id:?} (row {row}) is already in the index");
        }
    }
    let batch = (n / 100).clamp(1_000, 50_000);
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(n as u64) };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items ({eta} left)").expect("valid template"));
    let mut start = 0;
    while start < n {
        let end = (start + batch).min(n);
        let ids = margin_search::Ids::from_strings(input, names[start..end].to_vec())?;
        let tags = tags.map(|t| &t[start..end]);
        index.add(Items { rows: Rows::new(input, &data[start * dim..end * dim], dim), ids: Some(ids), tags })?;
        bar.inc((end - start) as u64);
        start = end;
    }
    bar.finish_and_clear();
    Ok(())
}

fn build(a: BuildArgs) -> Result<()> {
    let v = load(a.embeddings.as_deref(), a.ids.as_deref(), &a.source, "--embeddings")?;
    let (input, data, n, dim, ids) = (v.input, v.data, v.n, v.dim, v.ids);
    let tags = a.tags.as_deref().map(|p| read_tags(p, n)).transpose()?;
    let fingerprint = v.fingerprint.unwrap_or_else(|| a.fingerprint.clone());
    let spec = Spec { metric: a.metric, dim, precision: a.precision, fingerprint, tagged: tags.is_some() };
    let params = HnswParams { m: a.m, ef_construction: a.ef_construction, seed: a.seed, threads: a.threads };
    let mut index = new_index(a.kind, n, &spec, params)?;
    let t = std::time::Instant::now();
    add_with_progress(index.as_index_mut(), &input, &data, dim, ids, tags.as_deref(), a.quiet)?;
    let secs = t.elapsed().as_secs_f64();
    index.as_index().save(&a.out)?;
    let kind = kind_name(&index);
    println!("indexed {n} items ({dim}-d, {}, {kind}, {}) in {secs:.1} s → {}", a.metric, a.precision.name(), a.out.display());
    Ok(())
}

fn kind_name(index: &AnyIndex) -> &'static str {
    match index {
        AnyIndex::Flat(_) => "exact",
        AnyIndex::Hnsw(_) => "hnsw",
    }
}

fn add(a: AddArgs) -> Result<()> {
    if a.embeddings.is_some() && a.ids.is_none() {
        bail!("--ids is required with --embeddings: row numbers would collide with the existing items' ids");
    }
    let v = load(a.embeddings.as_deref(), a.ids.as_deref(), &a.source, "--embeddings")?;
    let (input, data, n, dim) = (v.input, v.data, v.n, v.dim);
    let mut index = open_index(&a.index, &Expect { dim: Some(dim), ..Expect::default() })?;
    super::search::check_model(index.as_index(), &a.index, v.fingerprint.as_deref())?;
    let ids = v.ids;
    let tags = a.tags.as_deref().map(|p| read_tags(p, n)).transpose()?;
    add_with_progress(index.as_index_mut(), &input, &data, dim, ids, tags.as_deref(), true)?;
    let out = a.out.as_ref().unwrap_or(&a.index);
    index.as_index().save(out)?;
    println!("added {n} items → {} ({} items)", out.display(), index.as_index().len());
    Ok(())
}

fn remove(a: RemoveArgs) -> Result<()> {
    let mut ids = a.id.clone();
    if let Some(p) = &a.ids {
        ids.extend(read_ids(p)?.names().iter().cloned());
    }
    if let Some(p) = &a.input {
        ids.extend(input_ids(p)?);
    }
    if ids.is_empty() {
        bail!("nothing to remove: give --id ID (repeatable), --ids ids.txt or --input DIR");
    }
    let mut index = open_index(&a.index, &Expect::default())?;
    if let Some(run) = &a.model {
        let fp = if super::embed_text::is_sentence_transformers(run) {
            super::model_input::text_fingerprint(run)?
        } else {
            super::model_input::fingerprint(run, &margin_data::ModelCard::read(&run.join("model.json"))?)?
        };
        super::search::check_model(index.as_index(), &a.index, Some(&fp))?;
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let removed = index.as_index_mut().remove(&refs).with_context(|| format!("removing from {} (nothing was removed)", a.index.display()))?;
    let out = a.out.as_ref().unwrap_or(&a.index);
    index.as_index().save(out)?;
    println!("removed {removed} items → {} ({} items left)", out.display(), index.as_index().len());
    Ok(())
}

/// The ids `--model RUN --input PATH` gives the items of `p` (without embedding them): a
/// text file's `FILE:LINE`, an image folder's or zip's image paths.
fn input_ids(p: &Path) -> Result<Vec<String>> {
    use margin_data::Samples;
    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if matches!(ext.as_deref(), Some("txt" | "jsonl" | "ndjson")) {
        let items = margin_data::text::load_items(p, &margin_data::text::ItemFormat::for_path(p))?;
        return Ok((0..items.len()).map(|i| items.sample_id(i).into_owned()).collect());
    }
    Ok(margin_data::image_folder::image_paths(p)?)
}

/// What `margin index info` reports.
#[derive(serde::Serialize)]
struct Info {
    path: String,
    kind: &'static str,
    metric: String,
    dim: usize,
    precision: &'static str,
    items: usize,
    removed: usize,
    tagged: bool,
    fingerprint: String,
    file_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    hnsw: Option<HnswInfo>,
}

#[derive(serde::Serialize)]
struct HnswInfo {
    m: usize,
    ef_construction: usize,
    seed: u64,
    memory_bytes: usize,
}

fn describe(path: &Path, index: &AnyIndex) -> Result<Info> {
    let i = index.as_index();
    let tagged = (0..i.slots() as u32).next().is_some_and(|s| i.tag(s).is_some());
    let hnsw = match index {
        AnyIndex::Hnsw(h) => {
            let p = h.params();
            Some(HnswInfo { m: p.m, ef_construction: p.ef_construction, seed: p.seed, memory_bytes: h.memory_bytes() })
        }
        AnyIndex::Flat(_) => None,
    };
    Ok(Info {
        path: path.display().to_string(),
        kind: kind_name(index),
        metric: i.metric().name().to_string(),
        dim: i.dim(),
        precision: i.precision().name(),
        items: i.len(),
        removed: i.slots() - i.len(),
        tagged,
        fingerprint: i.fingerprint().to_string(),
        file_bytes: std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len(),
        hnsw,
    })
}

fn info(a: InfoArgs) -> Result<()> {
    let index = open_index(&a.index, &Expect::default())?;
    let d = describe(&a.index, &index)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    println!("{}: {} index, {} items ({} removed), {}-d, metric {}, {} storage{}", d.path, d.kind, d.items, d.removed, d.dim, d.metric, d.precision, if d.tagged { ", tagged" } else { "" });
    println!("model fingerprint: {}", if d.fingerprint.is_empty() { "(none recorded)" } else { &d.fingerprint });
    if let Some(h) = &d.hnsw {
        println!("hnsw: M {} efConstruction {} seed {}; {:.1} MB in memory", h.m, h.ef_construction, h.seed, h.memory_bytes as f64 / 1e6);
    }
    println!("file: {:.1} MB", d.file_bytes as f64 / 1e6);
    Ok(())
}
