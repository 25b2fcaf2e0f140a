//! The model card of a fine-tuned text encoder (`text_model.json` in the run folder).
//!
//! A text run's folder is itself a sentence-transformers folder (its `modules.json`,
//! tokenizer, pooling and fine-tuned `model.safetensors`), so `margin embed --model RUN`
//! and sentence-transformers load it as they load the base model. The card says what it
//! was made from and how it reads text: the base folder and the SHA-256 of its weights,
//! `config.json` and `tokenizer.json` (so a run is tied to the exact base model, not a
//! path that may change), the tokenizer's lower-casing and truncation length, the pooling
//! and normalisation, the width, and what the fine-tuning froze and how long it ran.
//! Read without Burn (search, the Python bindings). Versioned: a newer card is refused.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The card format this release writes.
pub const TEXT_CARD_VERSION: u32 = 1;

/// The card's file name in a run folder.
pub const TEXT_CARD_FILE: &str = "text_model.json";

/// The base model a run was fine-tuned from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseModel {
    /// The sentence-transformers folder, as given.
    pub folder: String,
    /// SHA-256 (hex) of its weight file.
    pub weights_sha256: String,
    /// SHA-256 of its `config.json`.
    pub config_sha256: String,
    /// SHA-256 of its `tokenizer.json`.
    pub tokenizer_sha256: String,
}

/// How a fine-tuned text encoder was made and reads its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextModelCard {
    /// Format version ([`TEXT_CARD_VERSION`]).
    pub version: u32,
    /// The base model.
    pub base: BaseModel,
    /// The tokenizer file (in the run folder's Transformer module).
    pub tokenizer: String,
    /// Lower-casing before tokenisation (`sentence_bert_config.json`'s `do_lower_case`).
    pub lowercase: bool,
    /// Tokens per input, [CLS] and [SEP] included; longer inputs are truncated.
    pub max_seq_length: usize,
    /// Pooling modes, in concatenation order (`cls`, `max`, `mean`, `mean_sqrt_len`).
    pub pooling: Vec<String>,
    /// L2-normalised outputs (a `Normalize` module).
    pub normalize: bool,
    /// Embedding width.
    pub dim: usize,
    /// Whether the embedding layer was frozen.
    pub frozen_embeddings: bool,
    /// How many of the lowest transformer layers were frozen.
    pub frozen_layers: usize,
    /// Optimizer steps taken.
    pub steps: usize,
}

impl TextModelCard {
    /// Reads a card, refusing a newer format.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses a card's JSON (`what` names it in errors).
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
        let card: TextModelCard = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a text model card: {e}")))?;
        if card.version > TEXT_CARD_VERSION {
            return Err(bad(format!("text model card version {} is newer than this margin reads ({TEXT_CARD_VERSION}); upgrade margin", card.version)));
        }
        Ok(card)
    }

    /// The card's JSON (pretty, newline-terminated).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("a card serialises");
        b.push(b'\n');
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> TextModelCard {
        TextModelCard {
            version: TEXT_CARD_VERSION,
            base: BaseModel { folder: "m".into(), weights_sha256: "a".into(), config_sha256: "b".into(), tokenizer_sha256: "c".into() },
            tokenizer: "tokenizer.json".into(),
            lowercase: true,
            max_seq_length: 256,
            pooling: vec!["mean".into()],
            normalize: true,
            dim: 384,
            frozen_embeddings: true,
            frozen_layers: 2,
            steps: 10,
        }
    }

    #[test]
    fn card_round_trips_and_a_newer_version_is_refused() {
        let c = card();
        assert_eq!(TextModelCard::from_bytes(&c.to_bytes(), "x").unwrap(), c);
        let newer = TextModelCard { version: TEXT_CARD_VERSION + 1, ..c };
        let e = TextModelCard::from_bytes(&newer.to_bytes(), "run/text_model.json").unwrap_err().to_string();
        assert!(e.contains("run/text_model.json") && e.contains("upgrade"), "{e}");
    }
}
