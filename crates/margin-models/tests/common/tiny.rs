//! A tiny sentence-transformers folder written from scratch (a 12-token WordPiece vocabulary,
//! a 1-layer BERT of width 8 with random weights), so that loading, its refusals and the
//! pipeline are tested without the real model; each test damages one file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

pub const VOCAB: [&str; 12] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "##s", "a", "."];
pub const HIDDEN: usize = 8;
pub const MAX_POS: usize = 16;

/// Everything the folder holds, editable before writing.
pub struct Tiny {
    pub config: Value,
    pub modules: Value,
    pub pooling: Value,
    pub sbert: Value,
    pub tokenizer: String,
    /// Key → (shape, values), written as F32 safetensors.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

pub fn tokenizer_json() -> String {
    let added: Vec<Value> = VOCAB[..4]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let vocab: serde_json::Map<String, Value> = VOCAB.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
    let special = |t: &str| json!({"SpecialToken": {"id": t, "type_id": 0}});
    json!({
        "version": "1.0",
        "truncation": {"max_length": 4, "strategy": "LongestFirst", "stride": 0, "direction": "Right"},
        "padding": {"strategy": {"Fixed": 10}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, special("[SEP]")],
            "pair": [special("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, special("[SEP]"), {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
        },
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

impl Tiny {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = BTreeMap::new();
        let mut put = |k: &str, shape: Vec<usize>, lo: f32, hi: f32| {
            let n = shape.iter().product();
            t.insert(k.to_string(), (shape, (0..n).map(|_| rng.random_range(lo..hi)).collect()));
        };
        let (h, i) = (HIDDEN, 16);
        put("embeddings.word_embeddings.weight", vec![VOCAB.len(), h], -1.0, 1.0);
        put("embeddings.position_embeddings.weight", vec![MAX_POS, h], -0.5, 0.5);
        put("embeddings.token_type_embeddings.weight", vec![2, h], -0.5, 0.5);
        put("embeddings.LayerNorm.weight", vec![h], 0.5, 1.5);
        put("embeddings.LayerNorm.bias", vec![h], -0.1, 0.1);
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            put(&format!("encoder.layer.0.{name}.weight"), vec![out, inp], -0.5, 0.5);
            put(&format!("encoder.layer.0.{name}.bias"), vec![out], -0.1, 0.1);
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(&format!("encoder.layer.0.{norm}.weight"), vec![h], 0.5, 1.5);
            put(&format!("encoder.layer.0.{norm}.bias"), vec![h], -0.1, 0.1);
        }
        put("pooler.dense.weight", vec![h, h], -0.5, 0.5);
        put("pooler.dense.bias", vec![h], -0.1, 0.1);
        Tiny {
            config: json!({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": VOCAB.len(), "hidden_size": h,
                "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": i, "max_position_embeddings": MAX_POS,
                "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1}),
            modules: json!([
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            ]),
            pooling: json!({"word_embedding_dimension": h, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true,
                "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}),
            sbert: json!({"max_seq_length": 6, "do_lower_case": false}),
            tokenizer: tokenizer_json(),
            tensors: t,
        }
    }

    /// Writes the folder under a fresh temporary directory named after `name`.
    pub fn write(&self, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("margin-text-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
        std::fs::create_dir_all(dir.join("2_Normalize")).unwrap();
        std::fs::write(dir.join("config.json"), self.config.to_string()).unwrap();
        std::fs::write(dir.join("modules.json"), self.modules.to_string()).unwrap();
        std::fs::write(dir.join("1_Pooling/config.json"), self.pooling.to_string()).unwrap();
        std::fs::write(dir.join("sentence_bert_config.json"), self.sbert.to_string()).unwrap();
        std::fs::write(dir.join("tokenizer.json"), &self.tokenizer).unwrap();
        write_safetensors(&dir.join("model.safetensors"), &self.tensors);
        dir
    }
}

/// The safetensors format: u64 header length, JSON header (name → dtype, shape, byte
/// offsets), then the little-endian data.
pub fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (k, (shape, v)) in tensors {
        let start = data.len();
        for x in v {
            data.extend_from_slice(&x.to_le_bytes());
        }
        header.insert(k.clone(), json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let mut h = Value::Object(header).to_string().into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    std::fs::write(path, out).unwrap();
}
