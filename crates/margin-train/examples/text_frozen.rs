//! The text evaluation protocols on a sentence-transformers folder as it is (frozen):
//! CLINC150 closed-set (with out-of-scope detection), BANKING77 closed-set, CLINC150
//! open-set (30 % of the intents held out) and STS-B test Spearman. Writes one
//! `metrics.json` document (a list, each entry naming its protocol) and prints it.
//!
//! ```text
//! cargo run --profile checked -p margin-train --example text_frozen -- \
//!     [--model DIR] [--out metrics.json] [--threads 2] [--only clinc150|banking77|sts|open-set]
//! ```
//! `--model` defaults to `$MARGIN_TEST_MINILM`; the data to `../shared/data`.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use margin_models::text::SentenceEncoder;
use margin_train::text_eval::{TextData, TextProtocol, evaluate_sts, evaluate_text};

fn main() {
    margin::alloc::tune();
    let mut args = std::env::args().skip(1);
    let (mut model, mut out, mut threads, mut only) = (std::env::var_os("MARGIN_TEST_MINILM").map(PathBuf::from), PathBuf::from("text_metrics.json"), 2, None::<String>);
    while let Some(a) = args.next() {
        let mut v = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(PathBuf::from(v())),
            "--out" => out = PathBuf::from(v()),
            "--threads" => threads = v().parse().expect("--threads N"),
            "--only" => only = Some(v()),
            _ => panic!("unknown argument {a}"),
        }
    }
    let model = model.expect("--model DIR or MARGIN_TEST_MINILM");
    margin_eval::init_threads(threads).expect("one global pool");
    let enc = SentenceEncoder::load(&model, &Device::flex()).expect("the model folder loads");
    let dim = enc.dim();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let mut sentences = 0usize;
    let mut embed = |t: &[String]| {
        sentences += t.len();
        enc.encode(t, 64)
    };
    let clinc = TextData::Clinc150 { path: data.join("clinc150/data_full.json") };
    let banking = TextData::Labelled { train: data.join("banking77/train.csv"), test: data.join("banking77/test.csv"), text_column: "text".into(), label_column: "category".into() };
    let closed = TextProtocol::ClosedSet { allow_shared_intents: true, drop_shared_utterances: true };
    let start = Instant::now();
    let mut results = Vec::new();
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if want("clinc150") {
        results.push(serde_json::to_value(evaluate_text(&clinc, &closed, dim, &mut embed).expect("CLINC150 closed-set")).unwrap());
    }
    if want("banking77") {
        results.push(serde_json::to_value(evaluate_text(&banking, &closed, dim, &mut embed).expect("BANKING77 closed-set")).unwrap());
    }
    if want("open-set") {
        let open = TextProtocol::OpenSet { test_fraction: 0.3, seed: 0 };
        results.push(serde_json::to_value(evaluate_text(&clinc, &open, dim, &mut embed).expect("CLINC150 open-set")).unwrap());
    }
    if want("sts") {
        let sts = evaluate_sts(&data.join("stsbenchmark/sts-test.csv"), dim, &mut embed).expect("STS-B");
        results.push(serde_json::json!({ "protocol": "sts", "sts": sts }));
    }
    let secs = start.elapsed().as_secs_f64();
    let doc = serde_json::json!({ "version": 1, "model": model, "sentences_encoded": sentences, "seconds": secs, "results": results });
    let text = serde_json::to_string_pretty(&doc).unwrap();
    margin_data::write_atomic(&out, text.as_bytes()).expect("metrics.json written");
    println!("{text}");
}
