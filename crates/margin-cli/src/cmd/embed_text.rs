//! `margin embed --model DIR` for a sentence-transformers folder (detected by its
//! `modules.json`): texts in, embeddings `.npy` and their ids out.
//!
//! Inputs: `.txt` (one item per line; margin-data's line rule: the final newline ends
//! the last item, an empty line is an empty item) or `.jsonl`/`.ndjson` (one JSON string,
//! or object with a `text` field, per line: items that hold newlines). The folder's own
//! pipeline decides everything else (tokenizer, truncation, pooling, normalisation), so
//! the image and feature flags (`--scale`, `--invert`, `--raw`, `--labels-out`) are
//! refused rather than ignored. Batches are sorted by token length (the encoder's
//! `length_sorted_batches`) and written back in input order.
//!
//! The search commands embed texts through the same function ([`embed_texts`]) for
//! `--model ST_FOLDER --input FILE.txt|.jsonl` (`model_input.rs`).
//!
//! The ids side file (`--ids-out`, default `E.ids.txt` beside `E.npy`) holds one id per
//! row, `INPUT:LINE` (1-based line), in margin-search's `ids.txt` format, so
//! `margin index`/`search` name results by where the text came from.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use margin_data::Samples;
use margin_data::text::{ItemFormat, load_items};
use margin_models::text::{SentenceEncoder, TextError};

use super::embed::EmbedArgs;

/// Batch size for text when `--batch` is not given (sentence-transformers' default is 32;
/// 64 is as fast on a CPU and the bench's setting).
pub const TEXT_BATCH: usize = 64;

/// Whether `dir` is a sentence-transformers folder.
pub fn is_sentence_transformers(dir: &Path) -> bool {
    dir.join("modules.json").is_file()
}

/// The ids file for `out` when `--ids-out` is not given: `E.npy` → `E.ids.txt`.
pub fn default_ids_path(out: &Path) -> PathBuf {
    out.with_extension("ids.txt")
}

fn refuse_image_flags(a: &EmbedArgs, model: &Path) -> anyhow::Result<()> {
    let set = [("--scale", a.scale.is_some()), ("--invert", a.invert), ("--raw", a.raw), ("--labels-out", a.labels_out.is_some())];
    if let Some((flag, _)) = set.iter().find(|f| f.1) {
        bail!(
            "{flag} does not apply to a text model: {} is a sentence-transformers folder, whose modules.json decides \
             tokenisation, pooling and normalisation; drop {flag}",
            model.display()
        );
    }
    Ok(())
}

/// Texts embedded by a sentence-transformers folder.
pub struct TextEmbedding {
    /// `n × dim` values, in input order.
    pub emb: Vec<f32>,
    /// Columns.
    pub dim: usize,
    /// One id per row: `INPUT:LINE`.
    pub ids: Vec<String>,
    /// The texts.
    pub texts: Vec<String>,
}

/// Embeds the texts of `p` (`.txt` / `.jsonl`) with the sentence-transformers folder `model`
/// on `device`.
///
/// # Errors
/// Another input kind, an unreadable input or model, a text the encoder refuses, or
/// embeddings that are not usable (non-finite).
pub fn embed_texts(model: &Path, p: &Path, batch: Option<usize>, device: &margin::burn::tensor::Device) -> anyhow::Result<TextEmbedding> {
    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("txt" | "jsonl" | "ndjson")) {
        bail!("{}: a text model embeds .txt (one item per line) or .jsonl (one JSON string or {{\"text\": …}} per line)", p.display());
    }
    let items = load_items(p, &ItemFormat::for_path(p))?;
    let enc = SentenceEncoder::load(model, device).with_context(|| format!("loading the sentence-transformers folder {}", model.display()))?;
    let emb = enc.encode(items.texts(), batch.unwrap_or(TEXT_BATCH)).map_err(|e| match e {
        TextError::Input { index, reason } => anyhow::anyhow!("{}: {reason}; nothing written", items.sample_id(index)),
        e => anyhow::Error::new(e),
    })?;
    let dim = enc.dim();
    if let Some(fault) = margin_linalg::rows::first_bad_row(&emb, dim) {
        bail!("{}: the embeddings are not usable ({fault:?}); nothing written", p.display());
    }
    let ids = (0..items.len()).map(|i| items.sample_id(i).into_owned()).collect();
    Ok(TextEmbedding { emb, dim, ids, texts: items.texts().to_vec() })
}

/// Runs `margin embed` with a sentence-transformers folder.
pub fn run(a: &EmbedArgs, model: &Path) -> anyhow::Result<()> {
    refuse_image_flags(a, model)?;
    let e = embed_texts(model, &a.input, a.batch, &a.device.device()?)?;
    let n = e.ids.len();
    let ids_path = a.ids_out.clone().unwrap_or_else(|| default_ids_path(&a.out));
    let mut ids = String::new();
    for id in &e.ids {
        ids.push_str(id);
        ids.push('\n');
    }
    margin_data::npy::write_npy_f32(&a.out, &[n, e.dim], &e.emb).with_context(|| format!("writing {}", a.out.display()))?;
    margin_data::write_atomic(&ids_path, ids.as_bytes()).with_context(|| format!("writing {}", ids_path.display()))?;
    println!("embedded {n} texts → {} ({n} × {}), ids → {}", a.out.display(), e.dim, ids_path.display());
    Ok(())
}
