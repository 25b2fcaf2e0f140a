//! The BERT encoder (Devlin et al. 2019) as Hugging Face's `BertModel` computes it, without
//! the pooler (sentence-transformers pools the token states itself): embeddings → `n` ×
//! [self-attention block → feed-forward block], both blocks post-LN residuals.
//!
//! Only single-segment inputs are encoded (sentence embeddings), so every token's type is 0
//! and the token-type embedding contributes its row 0 to every position; the table is still
//! loaded (and checked) whole. Dropout is omitted, in inference and in margin's
//! fine-tuning alike (`margin_train::text_train`: a step is a deterministic function of the
//! weights and the batch, so a resumed run is bit-identical). The GELU is margin's kernel
//! on `flex`, with its own one-pass backward on the autodiff device (`kernels::gelu`,
//! tested against Burn's composition and its gradient), Burn's composition elsewhere.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use super::attention::{SelfAttention, SelfAttentionConfig, mask_bias};
use super::config::{Activation, BertConfig};

/// Word, position and token-type embeddings, summed and layer-normalised.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `embeddings.word_embeddings`: `[vocab, H]`.
    pub word: Embedding,
    /// `embeddings.position_embeddings`: `[max_positions, H]`.
    pub position: Embedding,
    /// `embeddings.token_type_embeddings`: `[types, H]`.
    pub token_type: Embedding,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm,
}

impl BertEmbeddings {
    /// `E[b, i] = LayerNorm(W_word[ids[b, i]] + W_pos[i] + W_type[0])`.
    ///
    /// # Shapes
    /// - `ids`: `[B, L]` token ids (`L` ≤ the position table's rows; checked by the caller)
    /// - output: `[B·L, H]`
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [b, l] = ids.dims();
        let words = self.word.forward(ids); // [B, L, H]
        let hidden = words.dims()[2];
        let positions = self.position.weight.val().narrow(0, 0, l).reshape([1, l, hidden]);
        let token_type = self.token_type.weight.val().narrow(0, 0, 1).reshape([1, 1, hidden]);
        self.layer_norm.forward((words + positions + token_type).reshape([b * l, hidden]))
    }
}

/// One transformer layer: the attention block, then `LayerNorm(A + W_2 act(W_1 A + b_1) + b_2)`.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// The self-attention block.
    pub attention: SelfAttention,
    /// `intermediate.dense`: `H → intermediate`.
    pub intermediate: Linear,
    /// `output.dense`: `intermediate → H`.
    pub output: Linear,
    /// `output.LayerNorm`.
    pub layer_norm: LayerNorm,
}

impl BertLayer {
    /// `A = attention(X, M)`, `Y = LayerNorm(A + GELU(A W_1 + b_1) W_2 + b_2)`.
    ///
    /// # Shapes
    /// - `x`: `[B·L, H]`; `mask_bias`: `[B, 1, 1, L]`
    /// - output: `[B·L, H]`
    pub fn forward(&self, x: Tensor<2>, mask_bias: Tensor<4>) -> Tensor<2> {
        let a = self.attention.forward(x, mask_bias);
        // Exact GELU; one vectorised pass on flex (`kernels::gelu`).
        let h = crate::kernels::gelu(self.intermediate.forward(a.clone()));
        self.layer_norm.forward(self.output.forward(h) + a)
    }
}

/// The BERT encoder: embeddings and its layers ([`BertConfig::init`] for random weights,
/// [`BertModel::from_pretrained`] for a Hugging Face checkpoint).
#[derive(Module, Debug)]
pub struct BertModel {
    /// The embeddings.
    pub embeddings: BertEmbeddings,
    /// The transformer layers, in order.
    pub layers: Vec<BertLayer>,
}

impl BertConfig {
    /// A model of these sizes with Burn's default random initialisation (tests; training
    /// from scratch).
    pub fn init(&self, device: &Device) -> BertModel {
        let Activation::Gelu = self.hidden_act;
        let (h, eps) = (self.hidden_size, self.layer_norm_eps);
        let norm = || LayerNormConfig::new(h).with_epsilon(eps).init(device);
        let attention = SelfAttentionConfig { hidden: h, heads: self.num_attention_heads, layer_norm_eps: eps };
        BertModel {
            embeddings: BertEmbeddings {
                word: EmbeddingConfig::new(self.vocab_size, h).init(device),
                position: EmbeddingConfig::new(self.max_position_embeddings, h).init(device),
                token_type: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
                layer_norm: norm(),
            },
            layers: (0..self.num_hidden_layers)
                .map(|_| BertLayer {
                    attention: attention.init(device),
                    intermediate: LinearConfig::new(h, self.intermediate_size).init(device),
                    output: LinearConfig::new(self.intermediate_size, h).init(device),
                    layer_norm: norm(),
                })
                .collect(),
        }
    }
}

impl BertModel {
    /// The last layer's hidden states of every position (padding positions included; they
    /// never influence real ones).
    ///
    /// # Shapes
    /// - `ids`: `[B, L]` token ids; `mask`: `[B, L]`, 1 for a real token, 0 for padding
    /// - output: `[B·L, H]` (sequence `b` at rows `b·L .. (b+1)·L`)
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let bias = mask_bias(mask);
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        x
    }

    /// The longest sequence the position table allows.
    pub fn max_positions(&self) -> usize {
        self.embeddings.position.weight.dims()[0]
    }

    /// Hidden width `H`.
    pub fn hidden_size(&self) -> usize {
        self.embeddings.word.weight.dims()[1]
    }
}
