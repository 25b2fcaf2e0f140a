//! The sentence-transformers loader on a tiny folder written from scratch
//! (`common/tiny.rs`): the pipeline runs, and each damaged or unsupported file is refused
//! with a message naming the file and the field, module or tensor.

mod common;

use std::path::Path;

use burn::tensor::Device;
use margin_models::text::SentenceEncoder;
use serde_json::json;

use common::tiny::{HIDDEN, Tiny};

fn load(dir: &Path) -> Result<SentenceEncoder, String> {
    SentenceEncoder::load(dir, &Device::flex()).map_err(|e| e.to_string())
}

/// Loading fails and the message contains every one of `words`.
fn refused(tiny: &Tiny, name: &str, words: &[&str]) -> String {
    let dir = tiny.write(name);
    let msg = load(&dir).err().unwrap_or_else(|| panic!("{name}: loaded"));
    for w in words {
        assert!(msg.contains(w), "{name}: message lacks {w:?}: {msg}");
    }
    let _ = std::fs::remove_dir_all(dir);
    msg
}

#[test]
fn tiny_folder_encodes_in_input_order_whatever_the_batch() {
    let dir = Tiny::new(1).write("ok");
    let enc = load(&dir).unwrap();
    assert_eq!(enc.dim(), HIDDEN);
    let texts = ["the cat sat on the mat.", "", "  a cat  ", "cats", "the the the the the the the the", "mat"];
    let ids = enc.tokenizer.tokenize(&texts).unwrap();
    // max_seq_length 6 (sentence_bert_config.json), not tokenizer.json's 4; no padding to 10.
    assert_eq!(ids[0], vec![2, 4, 5, 6, 7, 3]);
    assert_eq!(ids[1], vec![2, 3]);
    assert_eq!(ids[2], vec![2, 10, 5, 3]);
    assert_eq!(ids[3], vec![2, 5, 9, 3]);
    assert_eq!(ids[4].len(), 6);
    let one = enc.encode(&texts, 1).unwrap();
    let all = enc.encode(&texts, 64).unwrap();
    let two = enc.encode(&texts, 2).unwrap();
    for (name, other) in [("batch 64", &all), ("batch 2", &two)] {
        let d = one.iter().zip(other.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-5, "batch 1 vs {name}: {d}");
    }
    for row in one.chunks(HIDDEN) {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "row norm {n}");
    }
    assert!(enc.encode(&texts, 0).unwrap_err().to_string().contains("batch_size"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bert_prefix_old_layer_norm_names_and_pooling_modes_load() {
    let base = Tiny::new(2);
    let dir = base.write("plain");
    let reference = load(&dir).unwrap().encode(&["the cat"], 1).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    // BertForMaskedLM-style keys: `bert.` prefix, a `cls.` head, `gamma`/`beta` LayerNorms.
    let mut t = Tiny::new(2);
    t.tensors = base
        .tensors
        .iter()
        .map(|(k, v)| (format!("bert.{}", k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")), v.clone()))
        .collect();
    t.tensors.insert("cls.predictions.bias".into(), (vec![12], vec![0.0; 12]));
    let dir = t.write("prefixed");
    assert_eq!(load(&dir).unwrap().encode(&["the cat"], 1).unwrap(), reference);
    let _ = std::fs::remove_dir_all(dir);
    // CLS + mean, concatenated; no Normalize module.
    let mut t = Tiny::new(2);
    t.pooling["pooling_mode_cls_token"] = json!(true);
    t.modules.as_array_mut().unwrap().pop();
    let dir = t.write("cls-mean");
    let enc = load(&dir).unwrap();
    assert_eq!((enc.dim(), enc.normalize), (2 * HIDDEN, false));
    assert_eq!(enc.encode(&["the cat", "a"], 2).unwrap().len(), 4 * HIDDEN);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn not_a_sentence_transformers_folder() {
    let e = load(Path::new("/nonexistent/margin-model")).unwrap_err();
    assert!(e.contains("/nonexistent/margin-model") && e.contains("not a sentence-transformers model folder"), "{e}");
    let dir = Tiny::new(3).write("no-modules");
    std::fs::remove_file(dir.join("modules.json")).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(e.contains("not a sentence-transformers model folder") && e.contains("no modules.json"), "{e}");
    std::fs::write(dir.join("modules.json"), "[{\"type\": 3").unwrap();
    let e = load(&dir).unwrap_err();
    assert!(e.contains("modules.json: not a valid modules.json"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unsupported_modules_are_named() {
    let mut t = Tiny::new(4);
    t.modules.as_array_mut().unwrap().insert(2, json!({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}));
    refused(&t, "dense", &["modules.json", "\"sentence_transformers.models.Dense\"", "not supported"]);
    let mut t = Tiny::new(4);
    t.modules.as_array_mut().unwrap().swap(0, 1);
    refused(&t, "order", &["modules.json", "Pooling", "first module must be the Transformer"]);
    let mut t = Tiny::new(4);
    t.modules[0]["type"] = json!("my_package.MyEncoder");
    refused(&t, "custom", &["modules.json", "my_package.MyEncoder"]);
}

#[test]
fn bad_tokenizer_and_configs_are_named() {
    let mut t = Tiny::new(5);
    t.tokenizer = "{\"version\": \"1.0\", \"model\": 7}".into();
    refused(&t, "tokenizer", &["tokenizer.json", "not a usable tokenizer"]);
    let mut t = Tiny::new(5);
    t.config["hidden_act"] = json!("gelu_new");
    refused(&t, "act", &["config.json", "hidden_act", "gelu_new", "not implemented"]);
    let mut t = Tiny::new(5);
    t.config["vocab_size"] = json!(5);
    refused(&t, "vocab", &["tokenizer.json", "12 tokens", "vocab_size 5"]);
    let mut t = Tiny::new(5);
    t.sbert["max_seq_length"] = json!(512);
    refused(&t, "maxlen", &["sentence_bert_config.json", "max_seq_length", "512"]);
    let mut t = Tiny::new(5);
    t.pooling["pooling_mode_weightedmean_tokens"] = json!(true);
    refused(&t, "weighted", &["1_Pooling/config.json", "pooling_mode_weightedmean_tokens", "not implemented"]);
    let mut t = Tiny::new(5);
    t.pooling["word_embedding_dimension"] = json!(384);
    refused(&t, "pooldim", &["word_embedding_dimension", "384", "hidden_size (8)"]);
}

#[test]
fn weight_files_are_checked_key_by_key() {
    let mut t = Tiny::new(6);
    t.tensors.remove("encoder.layer.0.attention.self.query.weight");
    t.tensors.remove("embeddings.LayerNorm.bias");
    refused(&t, "missing", &["model.safetensors", "missing 2 tensor(s)", "encoder.layer.0.attention.self.query.weight", "embeddings.LayerNorm.bias"]);
    let mut t = Tiny::new(6);
    t.tensors.insert("encoder.layer.1.output.dense.bias".into(), (vec![HIDDEN], vec![0.0; HIDDEN]));
    refused(&t, "unexpected", &["model.safetensors", "1 unexpected tensor(s)", "encoder.layer.1.output.dense.bias"]);
    let mut t = Tiny::new(6);
    t.tensors.insert("encoder.layer.0.intermediate.dense.weight".into(), (vec![HIDDEN, 16], vec![0.0; 16 * HIDDEN]));
    refused(&t, "shape", &["model.safetensors", "encoder.layer.0.intermediate.dense.weight", "shape [8, 16]", "shape [16, 8]"]);
    let mut t = Tiny::new(6);
    t.tensors.get_mut("encoder.layer.0.output.LayerNorm.weight").unwrap().1[3] = f32::NAN;
    refused(&t, "nan", &["encoder.layer.0.output.LayerNorm.weight", "non-finite value NaN at flat index 3"]);
    let dir = Tiny::new(6).write("no-weights");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = load(&dir).unwrap_err();
    assert!(e.contains("no weight file") && e.contains("model.safetensors, pytorch_model.bin"), "{e}");
    std::fs::write(dir.join("pytorch_model.bin"), b"not a pickle").unwrap();
    let e = load(&dir).unwrap_err();
    assert!(e.contains("pytorch_model.bin") && e.contains("cannot read the tensors"), "{e}");
    std::fs::write(dir.join("model.safetensors"), b"\x08\0\0\0\0\0\0\0{}").unwrap();
    let e = load(&dir).unwrap_err();
    assert!(e.contains("model.safetensors"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}
