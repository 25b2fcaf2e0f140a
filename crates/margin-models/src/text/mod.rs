//! Pretrained sentence encoders: a sentence-transformers model folder (BERT family, e.g.
//! all-MiniLM-L6-v2) run on Burn, giving the same embeddings as sentence-transformers.
//!
//! Pieces, one concept per file: the encoder's configuration from `config.json`
//! ([`BertConfig`]); the attention block ([`SelfAttention`]) and the rest of BERT
//! ([`BertModel`]); loading a Hugging Face checkpoint by its key names, every key checked
//! ([`BertModel::from_pretrained`]); tokenisation with Hugging Face's `tokenizers` from
//! `tokenizer.json` ([`TextTokenizer`]); pooling ([`Pooling`]); the whole pipeline of a
//! folder's `modules.json` ([`SentenceEncoder`]).
//!
//! Writing a (fine-tuned) encoder back as a sentence-transformers folder, Hugging Face key
//! names and all: [`save_sentence_folder`].
//!
//! Why a port rather than a binding: margin trains and evaluates on Burn, so fine-tuning a
//! pretrained encoder with margin's losses (`margin_train::text_train`) needs the encoder
//! as a Burn module; agreement with sentence-transformers is pinned by golden embeddings
//! (`tests/text_golden.rs`). Why `tokenizers`: WordPiece details (accents, CJK, control
//! characters, literal special-token text, truncation) are easy to get subtly wrong; the
//! library that produced the reference ids reads the same `tokenizer.json`.

mod attention;
mod bert;
mod config;
mod error;
mod export;
mod pooling;
mod sentence;
mod tokenize;
mod weights;

pub use attention::{MASKED, SelfAttention, SelfAttentionConfig, mask_bias};
pub use bert::{BertEmbeddings, BertLayer, BertModel};
pub use config::{Activation, BertConfig};
pub use error::TextError;
pub use export::{PIPELINE_FILES, file_sha256, identity_files, save_sentence_folder};
pub use pooling::{Pooling, PoolingMode};
pub use sentence::{SUPPORTED_MODULES, SentenceEncoder};
pub use tokenize::{PaddedBatch, TextTokenizer, length_buckets, length_sorted_batches, pad_batch};
pub use weights::{WEIGHT_FILES, find_weights, read_checkpoint};
