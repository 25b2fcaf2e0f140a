//! Writing a (fine-tuned) encoder back as a sentence-transformers folder: the base
//! folder's pipeline files and the new weights under Hugging Face's key names, so the
//! result loads in [`SentenceEncoder::load`] (and `margin embed --model`) exactly as the
//! base folder did, and in sentence-transformers itself.
//!
//! The weights go through burn-store: its `BurnToPyTorchAdapter` transposes `Linear`
//! weights back to PyTorch's `[out, in]` and renames LayerNorm `gamma`/`beta` to
//! `weight`/`bias`; key remapping turns Burn's field paths into Hugging Face's
//! (`layers.3.attention.query.weight` → `encoder.layer.3.attention.self.query.weight`).
//! The mapping is pinned by a round trip through [`BertModel::from_pretrained`], which
//! refuses any missing or unexpected key and checks every shape (tested bit-equal).
//!
//! Only the files sentence-transformers and Hugging Face read are copied (a fixed list per
//! module folder), never a base folder's other contents: a base that is itself a margin
//! run keeps its checkpoints and logs to itself.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::bert::BertModel;
use super::error::{TextError, read_json};
use super::sentence::SentenceEncoder;
use super::weights::find_weights;

/// Burn field paths → Hugging Face BERT keys (applied in order; each anchored, so a key
/// rewritten by one rule matches no later one).
const KEY_RULES: [(&str, &str); 10] = [
    (r"^embeddings\.word\.", "embeddings.word_embeddings."),
    (r"^embeddings\.position\.", "embeddings.position_embeddings."),
    (r"^embeddings\.token_type\.", "embeddings.token_type_embeddings."),
    (r"^embeddings\.layer_norm\.", "embeddings.LayerNorm."),
    (r"^layers\.([0-9]+)\.attention\.(query|key|value)\.", "encoder.layer.$1.attention.self.$2."),
    (r"^layers\.([0-9]+)\.attention\.output\.", "encoder.layer.$1.attention.output.dense."),
    (r"^layers\.([0-9]+)\.attention\.layer_norm\.", "encoder.layer.$1.attention.output.LayerNorm."),
    (r"^layers\.([0-9]+)\.intermediate\.", "encoder.layer.$1.intermediate.dense."),
    (r"^layers\.([0-9]+)\.output\.", "encoder.layer.$1.output.dense."),
    (r"^layers\.([0-9]+)\.layer_norm\.", "encoder.layer.$1.output.LayerNorm."),
];

/// The files of a module folder that sentence-transformers / transformers read.
pub const PIPELINE_FILES: [&str; 10] = [
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
    "merges.txt",
];

impl BertModel {
    /// The weights as a `model.safetensors` file's bytes, under Hugging Face's key names
    /// (F32; loadable by [`BertModel::from_pretrained`] and by transformers).
    pub fn to_hf_safetensors(&self, name: &Path) -> Result<Vec<u8>, TextError> {
        let err = |e: &dyn std::fmt::Display| TextError::Weights { path: name.to_path_buf(), reason: format!("cannot write the tensors: {e}") };
        let mut store = KEY_RULES.iter().fold(SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter), |s, (from, to)| s.with_key_remapping(*from, *to));
        self.valid().save_into(&mut store).map_err(|e| err(&e))?;
        store.get_bytes().map_err(|e| err(&e))
    }
}

#[derive(Deserialize)]
struct ModulePath {
    #[serde(default)]
    path: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TextError + '_ {
    move |source| TextError::Io { path: path.to_path_buf(), source }
}

/// Writes `model` with `base`'s pipeline (its tokenizer, pooling and normalisation files,
/// copied) as a sentence-transformers folder `dest` (created; each file written
/// atomically, the weights last). `write` is the atomic writer (margin-data's).
pub fn save_sentence_folder(
    base: &SentenceEncoder,
    model: &BertModel,
    dest: &Path,
    write: &mut dyn FnMut(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<(), TextError> {
    let src = base.folder();
    let modules: Vec<ModulePath> = read_json(&src.join("modules.json"), "modules.json (a list of {\"type\", \"path\"} modules)")?;
    let mut folders: Vec<String> = vec![String::new()];
    folders.extend(modules.into_iter().map(|m| m.path).filter(|p| !p.is_empty()));
    for rel in &folders {
        let (from, to) = (src.join(rel), dest.join(rel));
        std::fs::create_dir_all(&to).map_err(io(&to))?;
        for name in PIPELINE_FILES {
            let file = from.join(name);
            if file.is_file() {
                let bytes = std::fs::read(&file).map_err(io(&file))?;
                let target = to.join(name);
                write(&target, &bytes).map_err(io(&target))?;
            }
        }
    }
    let rel = base.transformer_folder().strip_prefix(src).unwrap_or(Path::new("")).to_path_buf();
    let weights = dest.join(rel).join("model.safetensors");
    let bytes = model.to_hf_safetensors(&weights)?;
    write(&weights, &bytes).map_err(io(&weights))
}

/// SHA-256 (hex) of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String, TextError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// The files that make an encoder what it is — its weights, `config.json` and
/// `tokenizer.json` — for a model card's fingerprint of the base model.
pub fn identity_files(enc: &SentenceEncoder) -> Result<[PathBuf; 3], TextError> {
    let t = enc.transformer_folder();
    Ok([find_weights(t)?, t.join("config.json"), t.join("tokenizer.json")])
}
