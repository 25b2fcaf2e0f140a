//! Writing an encoder back as a sentence-transformers folder (`save_sentence_folder`), and
//! the fine-tuning path of the encoder, on the tiny folder of `common/tiny.rs`:
//! - the written weights carry Hugging Face's key names: they load back through the same
//!   checked loader (every key present, none unexpected, every shape) and every tensor is
//!   bit-equal to the file the folder was loaded from (the pooler, unused, is not written);
//! - the encoder on an autodiff device (the GELU kernel with its backward) computes what the
//!   inference path computes, and the gradient reaches every layer.

mod common;

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use margin_models::text::{SentenceEncoder, pad_batch, read_checkpoint, save_sentence_folder};

use common::tiny::Tiny;

fn host(t: &burn::store::burn_pack::Tensor) -> Vec<f32> {
    let bytes = t.to_bytes().unwrap();
    burn::tensor::TensorData::from_bytes(bytes, t.shape.clone(), t.dtype).try_into_vec::<f32>().unwrap()
}

fn write_all(p: &Path, b: &[u8]) -> std::io::Result<()> {
    std::fs::write(p, b)
}

#[test]
fn saved_folder_has_hf_keys_and_round_trips_bit_for_bit() {
    let src = Tiny::new(11).write("export-src");
    let enc = SentenceEncoder::load(&src, &Device::flex()).unwrap();
    let dest = src.with_file_name(format!("{}-dest", src.file_name().unwrap().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&dest);
    save_sentence_folder(&enc, &enc.model, &dest, &mut write_all).unwrap();
    for f in ["modules.json", "config.json", "tokenizer.json", "sentence_bert_config.json", "1_Pooling/config.json", "model.safetensors"] {
        assert!(dest.join(f).is_file(), "{f} written");
    }
    assert!(dest.join("2_Normalize").is_dir());
    let before = read_checkpoint(&src.join("model.safetensors")).unwrap();
    let after = read_checkpoint(&dest.join("model.safetensors")).unwrap();
    let expected: Vec<&String> = before.keys().filter(|k| !k.starts_with("pooler.")).collect();
    assert_eq!(after.keys().collect::<Vec<_>>(), expected, "the same Hugging Face keys, the pooler left out");
    for (k, t) in &after {
        assert_eq!(t.shape, before[k].shape, "{k}: PyTorch's layout");
        assert_eq!(host(t), host(&before[k]), "{k}: bit-equal");
    }
    let again = SentenceEncoder::load(&dest, &Device::flex()).unwrap();
    let texts = ["the cat sat", "a mat .", "cats"];
    assert_eq!(enc.encode(&texts, 2).unwrap(), again.encode(&texts, 2).unwrap());
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn autodiff_path_equals_the_inference_kernel_and_reaches_every_layer() {
    let src = Tiny::new(5).write("export-ad");
    let plain = SentenceEncoder::load(&src, &Device::flex()).unwrap();
    let ad = Device::flex().autodiff();
    let train = SentenceEncoder::load(&src, &ad).unwrap();
    let ids = plain.tokenizer.tokenize(&["the cat sat on the mat", "a cat", "mats ."]).unwrap();
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let p = pad_batch(&seqs, plain.tokenizer.pad_id());
    let run = |e: &SentenceEncoder, d: &Device| {
        let i = Tensor::<2, Int>::from_data(TensorData::new(p.ids.clone(), [p.batch, p.len]), d);
        let m = Tensor::<2>::from_data(TensorData::new(p.mask.clone(), [p.batch, p.len]), d);
        e.forward(i, m)
    };
    let y_ad = run(&train, &ad);
    let a = y_ad.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let b = run(&plain, &Device::flex()).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(d < 2e-6, "autodiff vs inference: {d}");
    let grads = y_ad.powi_scalar(2).sum().backward();
    let layer = &train.model.layers[0];
    for (name, g) in [
        ("intermediate (GELU's input side)", layer.intermediate.weight.grad(&grads)),
        ("attention.query", layer.attention.query.weight.grad(&grads)),
        ("word embeddings", train.model.embeddings.word.weight.grad(&grads)),
    ] {
        let g = g.unwrap_or_else(|| panic!("{name}: no gradient"));
        let g = g.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0), "{name}: a finite, non-zero gradient");
    }
    std::fs::remove_dir_all(&src).unwrap();
}
