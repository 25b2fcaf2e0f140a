//! Where the search commands' vectors come from: precomputed embeddings (`--embeddings
//! E.npy [--ids ids.txt]`), or a trained model and an input (`--model RUN --input
//! DIR|ZIP|.npy|…`), embedded first through `margin embed`'s own code path
//! ([`super::embed::embed_input`], so preprocessing and every check are the same).
//!
//! A model's vectors carry a **fingerprint** recorded in the index and compared on use:
//! SHA-256 prefixes of the run's `model.json` (architecture, preprocessing, normalisation)
//! and `model.safetensors` (the weights: two runs with one card embed differently), and
//! the preprocessing actually applied. Item ids of an image folder or zip are the images'
//! paths below it (`margin_data::image_folder::image_paths`, the loader's order), of any
//! other input the row numbers (or `--ids`). A sentence-transformers folder embeds a
//! `.txt`/`.jsonl` input's texts (`embed_text.rs`); its fingerprint hashes `modules.json`,
//! `config.json` and the weights file, and its ids are `FILE:LINE`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, FromArgMatches};
use margin_data::ModelCard;
use margin_search::Ids;
use sha2::{Digest, Sha256};

use super::embed::{EmbedArgs, embed_input};
use super::vectors::{ids_or_rows, input_name, read_rows};

/// `--model RUN --input PATH`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// A run folder of `margin train`, or a sentence-transformers folder (texts): embed
    /// --input with it first.
    #[arg(long, value_name = "RUN")]
    pub model: Option<PathBuf>,
    /// What to embed with --model: an image folder or zip (root/<class>/<image>), .npy,
    /// .npz or .csv (as `margin embed --input`); .txt or .jsonl texts for a
    /// sentence-transformers folder (ids `FILE:LINE`).
    #[arg(long, value_name = "PATH", requires = "model")]
    pub input: Option<PathBuf>,
}

/// Vectors with their ids and origin.
pub struct Vectors {
    /// `n × dim` values.
    pub data: Vec<f32>,
    /// Rows.
    pub n: usize,
    /// Columns.
    pub dim: usize,
    /// One id per row.
    pub ids: Ids,
    /// The input's name in messages.
    pub input: String,
    /// The model's fingerprint (`None`: precomputed embeddings).
    pub fingerprint: Option<String>,
    /// The model card and its run folder (with `--model`).
    pub card: Option<(ModelCard, PathBuf)>,
    /// The folder image ids are relative to (an image-folder input).
    pub root: Option<PathBuf>,
    /// The texts, one per row (a text model's input), for the dedup page's snippets.
    pub texts: Option<Vec<String>>,
}

fn hash_prefix(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let d = Sha256::digest(&bytes);
    Ok(d.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The fingerprint of run folder `run` (see the module docs).
pub fn fingerprint(run: &Path, card: &ModelCard) -> Result<String> {
    let prep = card.preprocessing.map_or("unrecorded".to_string(), |p| serde_json::to_string(&p).unwrap_or_default());
    Ok(format!("margin model.json sha256:{} model.safetensors sha256:{} preprocessing {prep}", hash_prefix(&run.join("model.json"))?, hash_prefix(&run.join("model.safetensors"))?))
}

/// The fingerprint of the sentence-transformers folder `dir`: SHA-256 prefixes of its
/// pipeline (`modules.json`, `config.json`) and of its weights file.
pub fn text_fingerprint(dir: &Path) -> Result<String> {
    let weights = ["model.safetensors", "pytorch_model.bin"].iter().map(|f| dir.join(f)).find(|p| p.is_file());
    let Some(weights) = weights else { bail!("{}: no model.safetensors or pytorch_model.bin in the sentence-transformers folder", dir.display()) };
    Ok(format!(
        "sentence-transformers modules.json sha256:{} config.json sha256:{} {} sha256:{}",
        hash_prefix(&dir.join("modules.json"))?,
        hash_prefix(&dir.join("config.json"))?,
        weights.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        hash_prefix(&weights)?
    ))
}

/// Embeds the texts of `input` with the sentence-transformers folder `model` (`margin
/// embed`'s text path); ids `INPUT:LINE`.
fn embed_text(model: &Path, input: &Path) -> Result<Vectors> {
    let e = super::embed_text::embed_texts(model, input, None, &margin_train::DeviceSpec::Cpu.device()?)?;
    let n = e.ids.len();
    let ids = Ids::from_strings(&input.display().to_string(), e.ids)?;
    let fingerprint = text_fingerprint(model)?;
    Ok(Vectors { data: e.emb, n, dim: e.dim, ids, input: format!("--input {}", input.display()), fingerprint: Some(fingerprint), card: None, root: None, texts: Some(e.texts) })
}

/// Embeds `input` with `run` through `margin embed`'s path (its flags at their defaults):
/// a run folder's images or features, or a sentence-transformers folder's texts.
pub fn embed(run: &Path, input: &Path) -> Result<Vectors> {
    if super::embed_text::is_sentence_transformers(run) {
        return embed_text(run, input);
    }
    let cmd = EmbedArgs::augment_args(clap::Command::new("embed").no_binary_name(true));
    let argv = ["--model".into(), run.as_os_str().to_owned(), "--input".into(), input.as_os_str().to_owned(), "--out".into(), "unused.npy".into()];
    let m = cmd.try_get_matches_from(argv).context("preparing the embedding")?;
    let args = EmbedArgs::from_arg_matches(&m).context("preparing the embedding")?;
    let e = embed_input(&args)?;
    let n = e.ds.len();
    let lower = input.to_string_lossy().to_lowercase();
    let (ids, root) = if input.is_dir() || lower.ends_with(".zip") {
        let paths = margin_data::image_folder::image_paths(input)?;
        if paths.len() != n {
            bail!("{}: {} image paths for {n} embedded images", input.display(), paths.len());
        }
        (Ids::from_strings(&input.display().to_string(), paths)?, input.is_dir().then(|| input.to_path_buf()))
    } else {
        (Ids::rows(0, n), None)
    };
    let fingerprint = fingerprint(run, &e.card)?;
    Ok(Vectors { data: e.emb, n, dim: e.dim, ids, input: format!("--input {}", input.display()), fingerprint: Some(fingerprint), card: Some((e.card, run.to_path_buf())), root, texts: None })
}

/// The vectors of a command: `--embeddings` (flag name `flag`) with `--ids`, or
/// `--model --input`.
pub fn load(embeddings: Option<&Path>, ids: Option<&Path>, m: &ModelArgs, flag: &str) -> Result<Vectors> {
    match (embeddings, &m.model, &m.input) {
        (Some(_), Some(_), _) => bail!("give either {flag} or --model with --input, not both"),
        (Some(e), None, _) => {
            let input = input_name(flag, e);
            let (data, n, dim) = read_rows(e, flag)?;
            let ids = ids_or_rows(ids, n, &input)?;
            Ok(Vectors { data, n, dim, ids, input, fingerprint: None, card: None, root: None, texts: None })
        }
        (None, Some(run), Some(input)) => {
            if ids.is_some() {
                bail!("--ids applies to {flag}; with --model the ids are the input's image paths (or row numbers)");
            }
            embed(run, input)
        }
        (None, Some(_), None) => bail!("--model needs --input (what to embed)"),
        (None, None, _) => bail!("give {flag} E.npy, or --model RUN --input PATH"),
    }
}

impl Vectors {
    /// The card's thresholds as a source for `--far`, for a command measuring `metric`.
    pub fn card_thresholds(&self, metric: margin_search::Metric) -> Option<super::threshold::Card<'_>> {
        self.card.as_ref().map(|(c, run)| super::threshold::Card { run, thresholds: c.thresholds.as_ref(), dedup: c.dedup.as_ref(), metric })
    }
}
