//! sentence-transformers' `Pooling` module: token states → one vector per sentence.
//!
//! The modes are read from `1_Pooling/config.json` (`pooling_mode_cls_token`,
//! `pooling_mode_max_tokens`, `pooling_mode_mean_tokens`, `pooling_mode_mean_sqrt_len_tokens`);
//! several at once are concatenated in sentence-transformers' order (CLS, max, mean,
//! mean-√len), as it does. Modes this release does not implement (weighted mean, last token)
//! are refused by their field name rather than silently dropped, since dropping one changes
//! the embedding. The formulas, clamps and padding fill are sentence-transformers' own, so
//! the result agrees with it to rounding.

use std::path::Path;

use burn::tensor::Tensor;
use serde_json::Value;

use super::error::{TextError, read_json};

/// One pooling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first token's state ([CLS]).
    Cls,
    /// The element-wise maximum over real tokens.
    Max,
    /// The mean over real tokens.
    Mean,
    /// The sum over real tokens divided by `√(token count)`.
    MeanSqrtLen,
}

impl PoolingMode {
    /// The mode's name in a model card: `cls`, `max`, `mean`, `mean_sqrt_len`.
    pub fn name(&self) -> &'static str {
        match self {
            PoolingMode::Cls => "cls",
            PoolingMode::Max => "max",
            PoolingMode::Mean => "mean",
            PoolingMode::MeanSqrtLen => "mean_sqrt_len",
        }
    }

    /// In sentence-transformers' concatenation order, with its config field.
    const FIELDS: [(&'static str, PoolingMode); 4] = [
        ("pooling_mode_cls_token", PoolingMode::Cls),
        ("pooling_mode_max_tokens", PoolingMode::Max),
        ("pooling_mode_mean_tokens", PoolingMode::Mean),
        ("pooling_mode_mean_sqrt_len_tokens", PoolingMode::MeanSqrtLen),
    ];
}

/// Pooling of token states into sentence vectors (one or more modes, concatenated).
#[derive(Debug, Clone, PartialEq)]
pub struct Pooling {
    /// The modes, in concatenation order.
    pub modes: Vec<PoolingMode>,
}

impl Pooling {
    /// Reads a Pooling module's `config.json` for token states of width `hidden`.
    pub fn read(path: &Path, hidden: usize) -> Result<Self, TextError> {
        let value: Value = read_json(path, "Pooling config.json (a JSON object)")?;
        let Value::Object(obj) = value else {
            return Err(TextError::Json { path: path.to_path_buf(), what: "Pooling config.json", reason: "not a JSON object".into() });
        };
        if let Some(v) = obj.get("word_embedding_dimension") {
            if v.as_u64() != Some(hidden as u64) {
                return Err(TextError::config(path, "word_embedding_dimension", v, format!("must equal the encoder's hidden_size ({hidden})")));
            }
        }
        let flag = |field: &str| -> Result<bool, TextError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(v) => Err(TextError::config(path, field, v, "must be true or false")),
            }
        };
        for field in obj.keys().filter(|k| k.starts_with("pooling_mode_")) {
            if !PoolingMode::FIELDS.iter().any(|(f, _)| f == field) && flag(field)? {
                return Err(TextError::config(path, field.as_str(), true, "this pooling mode is not implemented (supported: cls_token, max_tokens, mean_tokens, mean_sqrt_len_tokens)"));
            }
        }
        let mut modes = Vec::new();
        for (field, mode) in PoolingMode::FIELDS {
            if flag(field)? {
                modes.push(mode);
            }
        }
        if modes.is_empty() {
            return Err(TextError::config(path, "pooling_mode_*", "all false", "at least one pooling mode must be true"));
        }
        Ok(Pooling { modes })
    }

    /// Width of the pooled vector for token states of width `hidden`.
    pub fn output_dim(&self, hidden: usize) -> usize {
        self.modes.len() * hidden
    }

    /// Pools each sequence's real tokens (`m` its `{0, 1}` mask row, `n = Σ m`):
    /// CLS `h₀`; max `max_{i: mᵢ=1} hᵢ` (padding filled with −10⁹, as sentence-transformers);
    /// mean `Σ mᵢhᵢ / max(n, 10⁻⁹)`; mean-√len `Σ mᵢhᵢ / √max(n, 10⁻⁹)`; concatenated.
    ///
    /// # Shapes
    /// - `hidden`: `[B·L, H]` (sequence `b` at rows `b·L .. (b+1)·L`); `mask`: `[B, L]`
    /// - output: `[B, modes · H]`
    pub fn forward(&self, hidden: Tensor<2>, mask: Tensor<2>) -> Tensor<2> {
        let [b, l] = mask.dims();
        let h = hidden.dims()[1];
        let states = hidden.reshape([b, l, h]);
        let m = mask.reshape([b, l, 1]);
        let sum = || (states.clone() * m.clone()).sum_dim(1).reshape([b, h]);
        let count = || m.clone().sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
        let parts: Vec<Tensor<2>> = self
            .modes
            .iter()
            .map(|mode| match mode {
                PoolingMode::Cls => states.clone().narrow(1, 0, 1).reshape([b, h]),
                PoolingMode::Max => {
                    let fill = m.clone().neg().add_scalar(1.0).mul_scalar(-1e9);
                    (states.clone() * m.clone() + fill).max_dim(1).reshape([b, h])
                }
                PoolingMode::Mean => sum() / count(),
                PoolingMode::MeanSqrtLen => sum() / count().sqrt(),
            })
            .collect();
        if parts.len() == 1 { parts.into_iter().next().expect("one part") } else { Tensor::cat(parts, 1) }
    }
}
