//! The Burn port of all-MiniLM-L6-v2 against sentence-transformers' own outputs
//! (`../shared/golden/text`): token ids equal for all 216 strings, embeddings with cosine
//! ≥ 0.99999 per row. The model folder comes from `MARGIN_TEST_MINILM` or a pip location
//! (`common/minilm.rs`); without it these tests fail with install instructions.

mod common;

use burn::tensor::Device;
use margin_models::text::{SentenceEncoder, TextTokenizer};

use common::minilm::{golden, minilm_folder};

fn sentences() -> Vec<String> {
    let path = golden("sentences.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("a list of strings")
}

#[test]
fn token_ids_equal_sentence_transformers_on_all_golden_strings() {
    let folder = minilm_folder();
    let texts = sentences();
    let expected: Vec<Vec<u32>> = serde_json::from_str(&std::fs::read_to_string(golden("token_ids.json")).unwrap()).unwrap();
    assert_eq!(texts.len(), expected.len());
    let tok = TextTokenizer::from_file(&folder.join("tokenizer.json"), 256, false).unwrap();
    let got = tok.tokenize(&texts).unwrap();
    let mut equal = 0;
    let mut first_bad = None;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        if g == e {
            equal += 1;
        } else if first_bad.is_none() {
            first_bad = Some(format!("string {i} {:?}: got {g:?}, expected {e:?}", texts[i]));
        }
    }
    eprintln!("token ids equal: {equal} / {}", texts.len());
    assert_eq!(equal, texts.len(), "first difference: {}", first_bad.unwrap_or_default());
}

#[test]
fn embeddings_agree_with_sentence_transformers() {
    let folder = minilm_folder();
    let texts = sentences();
    let gold = margin_data::npy::read_npy(&golden("embeddings.npy")).unwrap();
    assert_eq!(gold.header.shape, vec![texts.len(), 384]);
    let gold = gold.to_f32();
    let enc = SentenceEncoder::load(&folder, &Device::flex()).unwrap();
    assert_eq!((enc.dim(), enc.normalize), (384, true));
    let got = enc.encode(&texts, 64).unwrap();
    let (mut min_cos, mut worst, mut max_abs) = (f64::INFINITY, 0, 0f64);
    for i in 0..texts.len() {
        let (a, b) = (&got[i * 384..(i + 1) * 384], &gold[i * 384..(i + 1) * 384]);
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        if cos < min_cos {
            (min_cos, worst) = (cos, i);
        }
        max_abs = a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).fold(max_abs, f64::max);
    }
    eprintln!("embeddings: min cosine {min_cos:.10} (1 - cos = {:.2e}, string {worst}), max abs diff {max_abs:.3e}", 1.0 - min_cos);
    assert!(min_cos >= 0.99999, "string {worst} {:?}: cosine {min_cos}", texts[worst]);
    assert!(max_abs < 1e-4, "max abs diff {max_abs}");

    // Batching is invisible: another batch size (other padding, other batch companions)
    // gives the same rows.
    let again = enc.encode(&texts, 5).unwrap();
    let diff = got.iter().zip(&again).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("batch 64 vs batch 5: max abs diff {diff:.3e}");
    assert!(diff < 1e-5, "batch 64 vs 5 differ by {diff}");
}
