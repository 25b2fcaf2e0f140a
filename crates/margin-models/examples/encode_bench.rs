//! Sentences per second of the Burn sentence encoder on CLINC150's train + test queries
//! (19,500 short English queries, `../shared/data/clinc150/data_full.json`), batch 64, and
//! of sentence-transformers on the same texts when a Python with it is given.
//!
//! ```text
//! cargo run --release -p margin-models --example encode_bench -- \
//!     [--model DIR] [--limit N] [--batch 64] [--threads 2] [--python PYTHON]
//! ```
//! `--model` defaults to `$MARGIN_TEST_MINILM`. `--python` runs sentence-transformers'
//! `encode` on the same texts in the same run (same thread count) for a like-for-like figure.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use margin_models::text::SentenceEncoder;

fn main() {
    margin::alloc::tune();
    let mut args = std::env::args().skip(1);
    let (mut model, mut limit, mut batch, mut threads, mut python) = (std::env::var_os("MARGIN_TEST_MINILM").map(PathBuf::from), usize::MAX, 64, 2, None);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(v())),
            "--limit" => limit = v().parse().expect("--limit N"),
            "--batch" => batch = v().parse().expect("--batch N"),
            "--threads" => threads = v().parse().expect("--threads N"),
            "--python" => python = Some(v()),
            _ => panic!("unknown argument {a}"),
        }
    }
    let model = model.expect("--model DIR or MARGIN_TEST_MINILM (the all-MiniLM-L6-v2 folder)");
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("one global pool");

    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/clinc150/data_full.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data).expect("CLINC150 data_full.json")).expect("JSON");
    let texts: Vec<String> = ["train", "test"]
        .iter()
        .flat_map(|k| json[*k].as_array().expect("pairs").iter().map(|p| p[0].as_str().expect("text").to_string()))
        .take(limit)
        .collect();

    let enc = SentenceEncoder::load(&model, &Device::flex()).expect("model folder");
    enc.encode(&texts[..texts.len().min(256)], batch).expect("warm-up");
    let t0 = Instant::now();
    let ids = enc.tokenizer.tokenize(&texts).expect("tokenize");
    let t_tok = t0.elapsed().as_secs_f64();
    let tokens: usize = ids.iter().map(|s| s.len()).sum();
    let out = enc.encode_ids(&ids, batch).expect("encode");
    let total = t0.elapsed().as_secs_f64();
    assert_eq!(out.len(), texts.len() * enc.dim());
    println!(
        "margin (Burn flex, {threads} threads): {} sentences ({:.1} tokens each) at batch {batch}: {:.2} s, {:.0} sentences/s (tokenising {:.2} s)",
        texts.len(),
        tokens as f64 / texts.len() as f64,
        total,
        texts.len() as f64 / total,
        t_tok
    );

    if let Some(py) = python {
        let list = std::env::temp_dir().join("margin-encode-bench-texts.json");
        std::fs::write(&list, serde_json::to_string(&texts).unwrap()).unwrap();
        let script = format!(
            "import json, time, torch\ntorch.set_num_threads({threads})\nfrom sentence_transformers import SentenceTransformer\n\
             m = SentenceTransformer({model:?}, device='cpu')\ntexts = json.load(open({list:?}))\nm.encode(texts[:256], batch_size={batch})\n\
             t = time.perf_counter()\nm.encode(texts, batch_size={batch})\nd = time.perf_counter() - t\n\
             print(f'sentence-transformers (torch, {threads} threads): {{len(texts)}} sentences at batch {batch}: {{d:.2f}} s, {{len(texts)/d:.0f}} sentences/s')\n",
            model = model.display().to_string(),
            list = list.display().to_string(),
        );
        let status = std::process::Command::new(py).arg("-c").arg(script).status().expect("run python");
        assert!(status.success(), "sentence-transformers run failed");
    }
}
