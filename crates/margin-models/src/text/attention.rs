//! BERT's self-attention block (Hugging Face `BertAttention` = `BertSelfAttention` +
//! `BertSelfOutput`): multi-head scaled dot-product attention with a key padding mask,
//! the output projection, and the post-LN residual.
//!
//! Hidden states travel as `[B·L, H]` rows (sequence `b`'s tokens at rows `b·L .. (b+1)·L`)
//! so that every projection is one GEMM over the whole batch, not `B` small ones; only the
//! score product needs the `[B, heads, L, L]` layout, for the batch's own `L` (batches are
//! sorted by length, so `L` is close to every sequence's length). The scale `1/√d` is
//! applied to `Q` (`B·L·H` multiplications) rather than to the scores (`B·heads·L²`).
//! Padding is an additive bias on the scores ([`MASKED`]), whose `exp` underflows to exactly
//! 0; every query row sees at least one real key ([CLS]), so no softmax row is all-masked.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

/// The bias added to the attention scores of padding keys: far below any real score, and
/// finite in f32 (so `score + MASKED` is never `-inf − (-inf)` = NaN in the softmax).
pub const MASKED: f64 = -1e30;

/// Sizes of a [`SelfAttention`] block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfAttentionConfig {
    /// Hidden width `H`.
    pub hidden: usize,
    /// Number of heads (divides `H`).
    pub heads: usize,
    /// LayerNorm's `ε`.
    pub layer_norm_eps: f64,
}

impl SelfAttentionConfig {
    /// `heads` heads of width `hidden / heads`, LayerNorm `ε` = 1e-12 (BERT's).
    pub fn new(hidden: usize, heads: usize) -> Self {
        SelfAttentionConfig { hidden, heads, layer_norm_eps: 1e-12 }
    }

    /// A block with Burn's default random initialisation (weights are usually loaded instead:
    /// [`crate::text::BertModel::from_pretrained`]).
    pub fn init(&self, device: &Device) -> SelfAttention {
        assert!(self.heads > 0 && self.hidden % self.heads == 0, "heads must divide the hidden width (checked by BertConfig::read)");
        let lin = || LinearConfig::new(self.hidden, self.hidden).init(device);
        SelfAttention {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            layer_norm: LayerNormConfig::new(self.hidden).with_epsilon(self.layer_norm_eps).init(device),
            heads: self.heads,
        }
    }
}

/// Multi-head self-attention with its output projection and post-LN residual.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// `W_Q`, `b_Q` (`attention.self.query`).
    pub query: Linear,
    /// `W_K`, `b_K` (`attention.self.key`).
    pub key: Linear,
    /// `W_V`, `b_V` (`attention.self.value`).
    pub value: Linear,
    /// `W_O`, `b_O` (`attention.output.dense`).
    pub output: Linear,
    /// The residual's LayerNorm (`attention.output.LayerNorm`).
    pub layer_norm: LayerNorm,
    /// Number of heads.
    pub heads: usize,
}

impl SelfAttention {
    /// The attention block over a batch of `B` sequences of `L` positions.
    ///
    /// `Y = LayerNorm(X + concat_h(A_h) W_O + b_O)` with, for each head `h` of width `d`,
    /// `A_h = softmax(Q_h K_hᵀ / √d + M) V_h`, `Q = X W_Q + b_Q` (likewise `K`, `V`),
    /// and `M[b, ·, j]` = 0 for a real token `j` of sequence `b`, [`MASKED`] for padding.
    ///
    /// # Shapes
    /// - `x`: `[B·L, H]`, sequence `b`'s positions at rows `b·L .. (b+1)·L`
    /// - `mask_bias`: `[B, 1, 1, L]` (see [`mask_bias`])
    /// - output: `[B·L, H]`
    pub fn forward(&self, x: Tensor<2>, mask_bias: Tensor<4>) -> Tensor<2> {
        let [n, hidden] = x.dims();
        let [b, _, _, l] = mask_bias.dims();
        debug_assert_eq!(n, b * l, "x has B·L rows");
        let (heads, d) = (self.heads, hidden / self.heads);
        // [B·L, H] → [B, heads, L, d]
        let split = |t: Tensor<2>| t.reshape([b, l, heads, d]).swap_dims(1, 2);
        let q = split(self.query.forward(x.clone()).mul_scalar(1.0 / (d as f64).sqrt()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) + mask_bias; // [B, heads, L, L]
        let context = softmax(scores, 3).matmul(v); // [B, heads, L, d]
        let context = context.swap_dims(1, 2).reshape([n, hidden]);
        self.layer_norm.forward(self.output.forward(context) + x)
    }
}

/// The additive key mask of [`SelfAttention::forward`] from a `{0, 1}` attention mask
/// (1 = real token): `(1 − mask) · MASKED`.
///
/// # Shapes
/// - `mask`: `[B, L]`
/// - output: `[B, 1, 1, L]`
pub fn mask_bias(mask: Tensor<2>) -> Tensor<4> {
    let [b, l] = mask.dims();
    mask.neg().add_scalar(1.0).mul_scalar(MASKED).reshape([b, 1, 1, l])
}
