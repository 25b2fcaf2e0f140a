//! A sentence-transformers model folder as one encoder: `modules.json`'s pipeline
//! Transformer → Pooling → optional Normalize, run on Burn.
//!
//! The folder is read the way sentence-transformers reads it: `modules.json` lists the
//! modules with their sub-folders; the Transformer's folder holds `config.json`, the
//! weights, `tokenizer.json` and `sentence_bert_config.json` (`max_seq_length`,
//! `do_lower_case`); the Pooling module's folder holds its `config.json`. Only this
//! pipeline is implemented; a module that would change the embedding and is not
//! implemented (`Dense`, `LayerNorm`, custom modules) is refused by name rather than
//! skipped. Nothing is downloaded: the folder must hold everything.
//!
//! Encoding tokenises all inputs, batches them by length ([`length_sorted_batches`]), runs
//! each batch padded to its own longest sequence, and writes each row back at its input
//! position. Non-finite outputs are refused, naming the sentence.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::Deserialize;
use serde_json::Value;

use super::bert::BertModel;
use super::config::BertConfig;
use super::error::{TextError, read_json};
use super::pooling::Pooling;
use super::tokenize::{TextTokenizer, length_sorted_batches, pad_batch};
use super::weights::find_weights;

/// The module types this release runs, as `modules.json` names them.
pub const SUPPORTED_MODULES: [&str; 3] = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling", "sentence_transformers.models.Normalize"];

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// The pipeline's steps after the transformer, as read from `modules.json`.
fn read_modules(folder: &Path) -> Result<(PathBuf, PathBuf, bool), TextError> {
    let path = folder.join("modules.json");
    if !folder.is_dir() {
        return Err(TextError::NotSentenceTransformers { folder: folder.to_path_buf(), reason: "no such folder".into() });
    }
    if !path.is_file() {
        return Err(TextError::NotSentenceTransformers { folder: folder.to_path_buf(), reason: "it has no modules.json".into() });
    }
    let entries: Vec<ModuleEntry> = read_json(&path, "modules.json (a list of {\"type\", \"path\"} modules)")?;
    let short = |e: &ModuleEntry| e.kind.strip_prefix("sentence_transformers.models.").map(|s| s.rsplit('.').next().unwrap_or(s).to_string());
    let order = "this release runs Transformer → Pooling → optional Normalize";
    let unsupported = |e: &ModuleEntry, reason: String| TextError::UnsupportedModule { path: path.clone(), module: e.kind.clone(), reason };
    let mut it = entries.iter();
    let (transformer, pooling) = match (it.next(), it.next()) {
        (Some(t), Some(p)) => (t, p),
        _ => return Err(TextError::UnsupportedModule { path: path.clone(), module: "(none)".into(), reason: format!("{order}; the file lists {} module(s)", entries.len()) }),
    };
    for e in &entries {
        if !matches!(short(e).as_deref(), Some("Transformer" | "Pooling" | "Normalize")) {
            return Err(unsupported(e, format!("supported: {}", SUPPORTED_MODULES.join(", "))));
        }
    }
    if short(transformer).as_deref() != Some("Transformer") {
        return Err(unsupported(transformer, format!("{order}: the first module must be the Transformer")));
    }
    if short(pooling).as_deref() != Some("Pooling") {
        return Err(unsupported(pooling, format!("{order}: the second module must be Pooling")));
    }
    let normalize = match it.next() {
        None => false,
        Some(e) if short(e).as_deref() == Some("Normalize") => true,
        Some(e) => return Err(unsupported(e, format!("{order}: a third module can only be Normalize"))),
    };
    if let Some(e) = it.next() {
        return Err(unsupported(e, format!("{order}: nothing may follow Normalize")));
    }
    Ok((folder.join(&transformer.path), folder.join(&pooling.path), normalize))
}

/// `sentence_bert_config.json`: (max_seq_length, do_lower_case); absent, the position table's
/// length and no lower-casing.
fn read_sentence_bert_config(folder: &Path, max_positions: usize) -> Result<(usize, bool), TextError> {
    let path = folder.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok((max_positions, false));
    }
    let value: Value = read_json(&path, "sentence_bert_config.json (a JSON object)")?;
    let max_len = match value.get("max_seq_length") {
        None | Some(Value::Null) => max_positions,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 2 && n as usize <= max_positions => n as usize,
            _ => return Err(TextError::config(&path, "max_seq_length", v, format!("must be an integer in [2, {max_positions}] (config.json's max_position_embeddings)"))),
        },
    };
    let lower = match value.get("do_lower_case") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(TextError::config(&path, "do_lower_case", v, "must be true or false")),
    };
    Ok((max_len, lower))
}

/// A sentence-transformers model: tokenizer, BERT encoder, pooling and optional L2 normalisation.
#[derive(Debug)]
pub struct SentenceEncoder {
    /// The tokenizer.
    pub tokenizer: TextTokenizer,
    /// The encoder.
    pub model: BertModel,
    /// The pooling.
    pub pooling: Pooling,
    /// L2-normalise the pooled vectors (a `Normalize` module).
    pub normalize: bool,
    folder: PathBuf,
    /// The Transformer module's folder (the folder itself, or a sub-folder).
    transformer: PathBuf,
    device: Device,
}

impl SentenceEncoder {
    /// Loads a sentence-transformers folder (`modules.json` and its modules' files) onto
    /// `device` (use a non-autodiff device for inference).
    pub fn load(folder: &Path, device: &Device) -> Result<Self, TextError> {
        let (transformer, pooling_dir, normalize) = read_modules(folder)?;
        let config_path = transformer.join("config.json");
        if !config_path.is_file() {
            return Err(TextError::NotSentenceTransformers { folder: folder.to_path_buf(), reason: format!("the Transformer module has no {}", config_path.display()) });
        }
        let config = BertConfig::read(&config_path)?;
        let (max_len, lower) = read_sentence_bert_config(&transformer, config.max_position_embeddings)?;
        let tokenizer = TextTokenizer::from_file(&transformer.join("tokenizer.json"), max_len, lower)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(TextError::Tokenizer {
                path: transformer.join("tokenizer.json"),
                reason: format!("its vocabulary has {} tokens, more than config.json's vocab_size {}", tokenizer.vocab_size(), config.vocab_size),
            });
        }
        let pooling = Pooling::read(&pooling_dir.join("config.json"), config.hidden_size)?;
        let model = BertModel::from_pretrained(&config, &find_weights(&transformer)?, device)?;
        Ok(SentenceEncoder { tokenizer, model, pooling, normalize, folder: folder.to_path_buf(), transformer, device: device.clone() })
    }

    /// The folder it was loaded from.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The Transformer module's folder (where `config.json`, the weights and
    /// `tokenizer.json` are): the folder itself or one of its sub-folders.
    pub fn transformer_folder(&self) -> &Path {
        &self.transformer
    }

    /// The device its tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The same pipeline (tokenizer, pooling, normalisation, folder) around another
    /// encoder on `device`: the trainer's fine-tuned weights, or an inference copy of
    /// them (`model.valid()` on the device without autodiff).
    pub fn with_model(&self, model: BertModel, device: &Device) -> SentenceEncoder {
        SentenceEncoder {
            tokenizer: self.tokenizer.clone(),
            model,
            pooling: self.pooling.clone(),
            normalize: self.normalize,
            folder: self.folder.clone(),
            transformer: self.transformer.clone(),
            device: device.clone(),
        }
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.pooling.output_dim(self.model.hidden_size())
    }

    /// The embedding of each pre-tokenised sequence (ids as [`TextTokenizer::tokenize`]
    /// returns them), `batch_size` sequences per forward, as a row-major `[n, dim]` matrix
    /// in input order.
    pub fn encode_ids(&self, ids: &[Vec<u32>], batch_size: usize) -> Result<Vec<f32>, TextError> {
        margin::check::size("batch_size", batch_size, margin::check::MAX_BATCH)?;
        let (dim, vocab, max_len) = (self.dim(), self.model.embeddings.word.weight.dims()[0], self.model.max_positions());
        for (index, s) in ids.iter().enumerate() {
            if s.is_empty() || s.len() > max_len {
                return Err(TextError::Input { index, reason: format!("{} tokens (must be 1 to {max_len})", s.len()) });
            }
            if let Some(&t) = s.iter().find(|&&t| t as usize >= vocab) {
                return Err(TextError::Input { index, reason: format!("token id {t} is outside the vocabulary ({vocab} tokens)") });
            }
        }
        let lengths: Vec<usize> = ids.iter().map(|s| s.len()).collect();
        let mut out = vec![0f32; ids.len() * dim];
        for members in length_sorted_batches(&lengths, batch_size) {
            let seqs: Vec<&[u32]> = members.iter().map(|&i| ids[i].as_slice()).collect();
            let p = pad_batch(&seqs, self.tokenizer.pad_id());
            let shape = [p.batch, p.len];
            let t_ids = Tensor::<2, Int>::from_data(TensorData::new(p.ids, shape), &self.device);
            let mask = Tensor::<2>::from_data(TensorData::new(p.mask, shape), &self.device);
            let rows = self.forward(t_ids, mask);
            let rows = rows.into_data().convert::<f32>().try_into_vec::<f32>().expect("converted to f32");
            for (r, &i) in members.iter().enumerate() {
                let row = &rows[r * dim..(r + 1) * dim];
                if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                    return Err(TextError::Input { index: i, reason: format!("the embedding's component {j} is {} (non-finite)", row[j]) });
                }
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        Ok(out)
    }

    /// The embedding of each text as a row-major `[n, dim]` matrix in input order
    /// (`batch_size` sentences per forward; 64 is a good default on a CPU).
    pub fn encode<S: AsRef<str>>(&self, texts: &[S], batch_size: usize) -> Result<Vec<f32>, TextError> {
        let ids = self.tokenizer.tokenize(texts)?;
        self.encode_ids(&ids, batch_size)
    }

    /// Encoder → pooling → optional normalisation, `y = normalize(pool(BERT(ids), mask))`.
    ///
    /// # Shapes
    /// - `ids`: `[B, L]` token ids; `mask`: `[B, L]`, 1 for a real token, 0 for padding
    /// - output: `[B, dim]`
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        self.forward_with(&self.model, ids, mask)
    }

    /// [`SentenceEncoder::forward`] with another encoder of this architecture (the
    /// trainer's copy, on an autodiff device: the graph runs through it).
    pub fn forward_with(&self, model: &BertModel, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let hidden = model.forward(ids, mask.clone());
        let pooled = self.pooling.forward(hidden, mask);
        if self.normalize { margin::l2_normalize(pooled) } else { pooled }
    }
}
