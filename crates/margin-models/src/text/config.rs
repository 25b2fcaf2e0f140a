//! A BERT encoder's sizes, read from a Hugging Face `config.json`.
//!
//! The file is read field by field (not into one serde struct) so that every refusal names
//! the field as the file spells it, and so that the many fields BERT configs carry that do
//! not change the encoder's function (dropout rates, `architectures`, `transformers_version`)
//! are ignored rather than refused. The fields that would change the function and that this
//! release does not implement are refused by name: `hidden_act` other than `gelu` (BERT's
//! exact, erf-based GELU), `position_embedding_type` other than `absolute`, a `model_type`
//! other than `bert` (RoBERTa, for one, offsets its positions by the padding index).

use std::path::Path;

use serde_json::{Map, Value};

use super::error::{TextError, read_json};

/// The largest width, vocabulary or position table accepted: a sanity bound on typos
/// (`margin::check::MAX_DIM` for widths; BERT vocabularies reach ~250k).
const MAX_VOCAB: usize = 1 << 22;
const MAX_LAYERS: usize = 1 << 10;

/// The feed-forward activation (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: `x · Φ(x) = x · ½ (1 + erf(x / √2))`, exact (BERT's, not the tanh approximation).
    Gelu,
}

/// A BERT encoder's architecture (Hugging Face `BertConfig`, the fields that define the function).
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    /// Vocabulary size (rows of the word embedding).
    pub vocab_size: usize,
    /// Width `H` of every hidden state.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`H` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Rows of the position embedding: the longest sequence the model accepts.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding.
    pub type_vocab_size: usize,
    /// LayerNorm's `ε`.
    pub layer_norm_eps: f64,
    /// The feed-forward activation.
    pub hidden_act: Activation,
}

impl BertConfig {
    /// A configuration of the given sizes (GELU, `ε` = 1e-12, 2 token types), as for tests.
    pub fn new(vocab_size: usize, hidden_size: usize, num_hidden_layers: usize, num_attention_heads: usize, intermediate_size: usize, max_position_embeddings: usize) -> Self {
        BertConfig {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: Activation::Gelu,
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads `config.json`, refusing (by field) what this release does not implement.
    pub fn read(path: &Path) -> Result<Self, TextError> {
        let value: Value = read_json(path, "BERT config.json (a JSON object)")?;
        let Value::Object(obj) = value else {
            return Err(TextError::Json { path: path.to_path_buf(), what: "BERT config.json", reason: "not a JSON object".into() });
        };
        Self::from_object(&obj, path)
    }

    fn from_object(obj: &Map<String, Value>, path: &Path) -> Result<Self, TextError> {
        if let Some(v) = obj.get("model_type") {
            if v.as_str() != Some("bert") {
                return Err(TextError::config(path, "model_type", v, "only BERT encoders (\"bert\") are supported"));
            }
        }
        if let Some(v) = obj.get("position_embedding_type") {
            if v.as_str() != Some("absolute") {
                return Err(TextError::config(path, "position_embedding_type", v, "only \"absolute\" position embeddings are supported"));
            }
        }
        let hidden_act = match obj.get("hidden_act") {
            None => Activation::Gelu,
            Some(Value::String(s)) if s == "gelu" => Activation::Gelu,
            Some(v) => {
                return Err(TextError::config(path, "hidden_act", v, "this activation is not implemented (supported: \"gelu\", the exact erf form)"));
            }
        };
        let size = |field: &str, default: Option<usize>, max: usize| -> Result<usize, TextError> {
            let n = match obj.get(field) {
                None => default.ok_or_else(|| TextError::config(path, field, "(absent)", "is required"))?,
                Some(v) => v.as_u64().ok_or_else(|| TextError::config(path, field, v, "must be a positive integer"))? as usize,
            };
            if n == 0 || n > max {
                return Err(TextError::config(path, field, n, format!("must be in [1, {max}]")));
            }
            Ok(n)
        };
        let cfg = BertConfig {
            vocab_size: size("vocab_size", None, MAX_VOCAB)?,
            hidden_size: size("hidden_size", None, margin::check::MAX_DIM)?,
            num_hidden_layers: size("num_hidden_layers", None, MAX_LAYERS)?,
            num_attention_heads: size("num_attention_heads", None, margin::check::MAX_DIM)?,
            intermediate_size: size("intermediate_size", None, margin::check::MAX_DIM)?,
            max_position_embeddings: size("max_position_embeddings", None, MAX_VOCAB)?,
            type_vocab_size: size("type_vocab_size", Some(2), MAX_VOCAB)?,
            layer_norm_eps: match obj.get("layer_norm_eps") {
                None => 1e-12,
                Some(v) => match v.as_f64() {
                    Some(e) if e.is_finite() && e > 0.0 && e < 1.0 => e,
                    _ => return Err(TextError::config(path, "layer_norm_eps", v, "must be a number in (0, 1)")),
                },
            },
            hidden_act,
        };
        if cfg.hidden_size % cfg.num_attention_heads != 0 {
            return Err(TextError::config(
                path,
                "num_attention_heads",
                cfg.num_attention_heads,
                format!("must divide hidden_size ({})", cfg.hidden_size),
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BertConfig, TextError> {
        let Value::Object(obj) = serde_json::from_str(json).unwrap() else { panic!() };
        BertConfig::from_object(&obj, Path::new("config.json"))
    }

    const MINI: &str = r#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 12, "hidden_dropout_prob": 0.1, "model_type": "bert"}"#;

    #[test]
    fn reads_sizes_and_defaults() {
        let c = parse(MINI).unwrap();
        assert_eq!((c.hidden_size, c.head_dim(), c.type_vocab_size, c.layer_norm_eps), (8, 4, 2, 1e-12));
    }

    #[test]
    fn refusals_name_the_field() {
        let e = parse(&MINI.replace("\"model_type\": \"bert\"", "\"hidden_act\": \"swish\"")).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("hidden_act") && e.contains("swish") && e.contains("not implemented"), "{e}");
        let e = parse(&MINI.replace("\"bert\"", "\"roberta\"")).unwrap_err().to_string();
        assert!(e.contains("model_type") && e.contains("roberta"), "{e}");
        let e = parse(&MINI.replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 3")).unwrap_err().to_string();
        assert!(e.contains("num_attention_heads") && e.contains("divide hidden_size"), "{e}");
        let e = parse(&MINI.replace("\"hidden_size\": 8", "\"hidden_size\": -8")).unwrap_err().to_string();
        assert!(e.contains("`hidden_size` = -8"), "{e}");
        let e = parse(&MINI.replace("\"vocab_size\": 10,", "")).unwrap_err().to_string();
        assert!(e.contains("`vocab_size`") && e.contains("required"), "{e}");
        let e = parse(&MINI.replace("\"model_type\": \"bert\"", "\"position_embedding_type\": \"relative_key\"")).unwrap_err().to_string();
        assert!(e.contains("position_embedding_type"), "{e}");
    }
}
