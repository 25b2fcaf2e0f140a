//! Tokenisation with Hugging Face's `tokenizers` (the library sentence-transformers' fast
//! tokenizers are), configured as sentence-transformers calls it: `[CLS] … [SEP]`, truncation
//! to the model's `max_seq_length` (longest-first, special tokens counted), no padding from
//! the library (tokenizer.json often asks for fixed-length padding; batches here are padded
//! to their own longest sequence instead). Inputs are stripped of surrounding whitespace and,
//! when `do_lower_case` is set, lower-cased first, as sentence-transformers' `Transformer` does.
//!
//! Batches are formed from the sequences sorted by length ([`length_sorted_batches`]), so a
//! batch's padding is at most the spread of lengths within it; callers put the outputs back
//! in input order.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::error::TextError;

/// A tokenizer from `tokenizer.json`, set up as sentence-transformers uses it.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    max_length: usize,
    lowercase: bool,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("path", &self.path).field("max_length", &self.max_length).field("lowercase", &self.lowercase).finish()
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json`; sequences are truncated to `max_length` tokens including
    /// `[CLS]` and `[SEP]`; `lowercase` lower-cases inputs first (`do_lower_case`).
    pub fn from_file(path: &Path, max_length: usize, lowercase: bool) -> Result<Self, TextError> {
        let err = |reason: String| TextError::Tokenizer { path: path.to_path_buf(), reason };
        if !path.is_file() {
            return Err(err("no such file".into()));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
        let pad_id = inner.get_padding().map(|p| p.pad_id).or_else(|| inner.token_to_id("[PAD]")).unwrap_or(0);
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| err(format!("cannot truncate to {max_length} tokens: {e}")))?;
        Ok(TextTokenizer { inner, path: path.to_path_buf(), max_length, lowercase, pad_id })
    }

    /// Tokens in the vocabulary, added tokens included (every id is below it).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The longest sequence produced, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether texts are lower-cased before tokenisation.
    pub fn lowercase(&self) -> bool {
        self.lowercase
    }

    /// The id padding positions get (masked out, so any valid id would do).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The token ids of each text, `[CLS] … [SEP]`, truncated to [`Self::max_length`].
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, TextError> {
        let prepared: Vec<String> = texts
            .iter()
            .map(|t| {
                let t = t.as_ref().trim();
                if self.lowercase { t.to_lowercase() } else { t.to_string() }
            })
            .collect();
        match self.inner.encode_batch_fast(prepared.iter().map(|s| s.as_str()).collect::<Vec<_>>(), true) {
            Ok(enc) => Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect()),
            // Find which input failed, to name it.
            Err(batch_err) => {
                for (index, s) in prepared.iter().enumerate() {
                    if let Err(e) = self.inner.encode_fast(s.as_str(), true) {
                        return Err(TextError::Input { index, reason: format!("tokenizer ({}): {e}", self.path.display()) });
                    }
                }
                Err(TextError::Tokenizer { path: self.path.clone(), reason: batch_err.to_string() })
            }
        }
    }
}

/// Batches of at most `batch` indices into `lengths`, longest sequences first, so that each
/// batch pads to a length close to all of its members'. Every index appears exactly once.
pub fn length_sorted_batches(lengths: &[usize], batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order.chunks(batch.max(1)).map(|c| c.to_vec()).collect()
}

/// Splits one batch (a training step's sequences, whose order the caller keeps track of)
/// into chunks that are each padded to their own longest: sorted longest first (ties by
/// position), then cut where the total cost is least — the padded positions of every
/// chunk plus `chunk_cost` positions per chunk, the price of a smaller, less efficient
/// GEMM and of the ops' fixed overhead. Exact (dynamic programming over the cut points,
/// O(n²) for n sequences). A step of P×K short utterances padded to its longest computes
/// on up to twice the real tokens; its chunks, on a few percent more.
pub fn length_buckets(lengths: &[usize], chunk_cost: usize) -> Vec<Vec<usize>> {
    let n = lengths.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
    // best[j]: least cost of the first j sorted sequences; cut[j]: where its last chunk starts.
    let mut best = vec![0usize; n + 1];
    let mut cut = vec![0usize; n + 1];
    for j in 1..=n {
        let (c, i) = (0..j).map(|i| (best[i] + (j - i) * lengths[order[i]] + chunk_cost, i)).min().expect("j ≥ 1");
        best[j] = c;
        cut[j] = i;
    }
    let mut chunks = Vec::new();
    let mut j = n;
    while j > 0 {
        chunks.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    chunks.reverse();
    chunks
}

/// A batch of token sequences padded to its longest: row-major `[batch, len]` ids and mask.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    /// Token ids, padding positions holding the pad id.
    pub ids: Vec<i64>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<f32>,
    /// Sequences.
    pub batch: usize,
    /// Positions per sequence (the longest's length).
    pub len: usize,
}

/// Pads `seqs` to their longest with `pad_id`.
pub fn pad_batch(seqs: &[&[u32]], pad_id: u32) -> PaddedBatch {
    let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut ids = vec![pad_id as i64; seqs.len() * len];
    let mut mask = vec![0f32; seqs.len() * len];
    for (r, s) in seqs.iter().enumerate() {
        for (j, &t) in s.iter().enumerate() {
            ids[r * len + j] = t as i64;
            mask[r * len + j] = 1.0;
        }
    }
    PaddedBatch { ids, mask, batch: seqs.len(), len }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut points are the cheapest of every way to cut the sorted batch (brute force
    /// over all 2^(n−1) cuts), and every position appears once.
    #[test]
    fn length_buckets_are_the_cheapest_cuts() {
        let cost = |chunks: &[Vec<usize>], lengths: &[usize], c: usize| -> usize {
            chunks.iter().map(|ch| ch.len() * ch.iter().map(|&i| lengths[i]).max().unwrap() + c).sum()
        };
        let mut s = 7u64;
        for trial in 0..40 {
            let n = 1 + trial % 11;
            let lengths: Vec<usize> = (0..n).map(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); 2 + (s >> 59) as usize }).collect();
            let c = [0, 3, 8, 40][trial % 4];
            let got = length_buckets(&lengths, c);
            let mut seen: Vec<usize> = got.iter().flatten().copied().collect();
            seen.sort();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
            let brute = (0..1u32 << (n - 1)).map(|mask| {
                let mut chunks = vec![vec![order[0]]];
                for k in 1..n {
                    if mask >> (k - 1) & 1 == 1 { chunks.push(Vec::new()); }
                    chunks.last_mut().unwrap().push(order[k]);
                }
                cost(&chunks, &lengths, c)
            }).min().unwrap();
            assert_eq!(cost(&got, &lengths, c), brute, "{lengths:?} cost {c}");
        }
        assert_eq!(length_buckets(&[5, 5, 5], 1), vec![vec![0, 1, 2]], "equal lengths: one chunk");
        assert_eq!(length_buckets(&[40, 2, 2, 2, 2, 2], 4), vec![vec![0], vec![1, 2, 3, 4, 5]]);
        assert!(length_buckets(&[], 4).is_empty());
    }

    #[test]
    fn batches_cover_every_index_longest_first() {
        let lengths = [3, 9, 1, 9, 4, 2, 7];
        let b = length_sorted_batches(&lengths, 3);
        assert_eq!(b, vec![vec![1, 3, 6], vec![4, 0, 5], vec![2]]);
        let p = pad_batch(&[&[101, 7, 102], &[101, 102]], 0);
        assert_eq!((p.batch, p.len), (2, 3));
        assert_eq!(p.ids, vec![101, 7, 102, 101, 102, 0]);
        assert_eq!(p.mask, vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    }
}
