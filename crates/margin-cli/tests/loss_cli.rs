//! `margin loss` end to end: PML's golden values through the command line, and its errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde_json::Value;

fn margin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_margin"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("margin-loss-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write<T: ndarray_npy::WritableElement, D: ndarray::Dimension>(path: &Path, a: &ndarray::Array<T, D>) {
    a.write_npy(std::fs::File::create(path).unwrap()).unwrap();
}

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/golden/pml_golden.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> =
        v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

/// Every golden case (miner cases through `--miner ... --mined-out`), through
/// `margin loss --dtype f64 --json --grad-out`: value, gradient and mined tuples.
#[test]
fn margin_loss_reproduces_pml_golden_values_and_gradients() {
    let g = golden();
    let dir = scratch("golden");
    let mut checked = 0;
    for case in g["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let emb = dir.join(format!("{name}_emb.npy"));
        let lab = dir.join(format!("{name}_lab.npy"));
        let grad = dir.join(format!("{name}_grad.npy"));
        write(&emb, &matrix(&case["embeddings"]));
        let labels: Array1<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        write(&lab, &labels.mapv(|v| v as i32)); // any integer width is accepted
        let kw = &case["loss"]["kwargs"];
        let dist = &case["distance"];
        let mut cmd = margin();
        cmd.arg("loss").arg("--embeddings").arg(&emb).arg("--labels").arg(&lab).args(["--dtype", "f64", "--json"]);
        cmd.arg("--grad-out").arg(&grad);
        match dist["class"].as_str().unwrap() {
            "CosineSimilarity" => cmd.args(["--distance", "cosine"]),
            _ => {
                let squared = dist["kwargs"]["power"].as_i64() == Some(2);
                cmd.args(["--distance", if squared { "squared-euclidean" } else { "euclidean" }]);
                cmd.args(["--normalize", &dist["kwargs"]["normalize_embeddings"].as_bool().unwrap().to_string()])
            }
        };
        match case["loss"]["class"].as_str().unwrap() {
            "TripletMarginLoss" => {
                cmd.args(["--loss", "triplet", "--margin", &kw["margin"].as_f64().unwrap().to_string()]);
                if kw.get("smooth_loss").and_then(Value::as_bool) == Some(true) {
                    cmd.arg("--smooth");
                }
            }
            _ => {
                cmd.args(["--loss", "contrastive"]);
                cmd.args(["--pos-margin", &kw["pos_margin"].as_f64().unwrap().to_string()]);
                cmd.args(["--neg-margin", &kw["neg_margin"].as_f64().unwrap().to_string()]);
            }
        }
        let mined_out = dir.join(format!("{name}_mined.npy"));
        let miner = &case["miner"];
        if !miner.is_null() {
            let mkw = &miner["kwargs"];
            cmd.arg("--mined-out").arg(&mined_out);
            // The miner's own distance as PML had it (without one the miner mines on the loss's).
            let md = &miner["distance"];
            match md["class"].as_str().unwrap() {
                "CosineSimilarity" => cmd.args(["--miner-distance", "cosine"]),
                _ => {
                    let squared = md["kwargs"]["power"].as_i64() == Some(2);
                    cmd.args(["--miner-distance", if squared { "squared-euclidean" } else { "euclidean" }]);
                    cmd.args(["--miner-normalize", &md["kwargs"]["normalize_embeddings"].as_bool().unwrap().to_string()])
                }
            };
            match miner["class"].as_str().unwrap() {
                "BatchHardMiner" => cmd.args(["--miner", "batch-hard"]),
                "TripletMarginMiner" => cmd.args(["--miner", "triplet-margin"])
                    .args(["--miner-margin", &mkw["margin"].as_f64().unwrap().to_string()])
                    .args(["--miner-type", mkw["type_of_triplets"].as_str().unwrap()]),
                "MultiSimilarityMiner" => cmd.args(["--miner", "multi-similarity"])
                    .args(["--epsilon", &mkw["epsilon"].as_f64().unwrap().to_string()]),
                other => panic!("unknown miner {other}"),
            };
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        if !miner.is_null() {
            let rows = Array2::<i64>::read_npy(std::fs::File::open(&mined_out).unwrap()).unwrap();
            let col = |k: &str| -> Vec<i64> { case["mined"][k].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect() };
            let sorted = |mut v: Vec<Vec<i64>>| { v.sort(); v };
            if rows.ncols() == 3 {
                let want: Vec<Vec<i64>> = (0..col("a").len()).map(|i| vec![col("a")[i], col("p")[i], col("n")[i]]).collect();
                let got: Vec<Vec<i64>> = rows.rows().into_iter().map(|r| r.to_vec()).collect();
                assert_eq!(sorted(got), sorted(want), "{name}: mined triplets");
            } else {
                let pos: Vec<Vec<i64>> = rows.rows().into_iter().filter(|r| r[0] >= 0).map(|r| vec![r[0], r[1]]).collect();
                let neg: Vec<Vec<i64>> = rows.rows().into_iter().filter(|r| r[2] >= 0).map(|r| vec![r[2], r[3]]).collect();
                let want_pos: Vec<Vec<i64>> = (0..col("a1").len()).map(|i| vec![col("a1")[i], col("p")[i]]).collect();
                let want_neg: Vec<Vec<i64>> = (0..col("a2").len()).map(|i| vec![col("a2")[i], col("n")[i]]).collect();
                assert_eq!(sorted(pos), sorted(want_pos), "{name}: mined positive pairs");
                assert_eq!(sorted(neg), sorted(want_neg), "{name}: mined negative pairs");
            }
        }
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (ours, theirs) = (report["loss"].as_f64().unwrap(), case["loss_value"].as_f64().unwrap());
        assert!((ours - theirs).abs() <= 1e-9 * theirs.abs(), "{name}: loss {ours} vs {theirs}");
        assert_eq!(report["num_tuples"].as_u64(), case["num_loss_terms"].as_u64(), "{name}");
        let got = Array2::<f64>::read_npy(std::fs::File::open(&grad).unwrap()).unwrap();
        let want = matrix(&case["grad"]);
        let err = (&got - &want).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(err <= 1e-9, "{name}: gradient max abs error {err}");
        checked += 1;
    }
    assert_eq!(checked, 15, "every golden case, miners included");
}

#[test]
fn margin_loss_explicit_pairs_reproduce_the_seed_contrastive_value() {
    let dir = scratch("pairs");
    // The seed's four pairs, stacked as rows 0..4 (x) and 4..8 (y).
    let x = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0], [0.1, -0.1], [1.2, 1.1], [3.0, 2.8], [4.6, 5.2]];
    write(&dir.join("e.npy"), &Array2::from_shape_fn((8, 2), |(i, j)| x[i][j]));
    write(&dir.join("s.npy"), &Array2::from_shape_vec((2, 2), vec![0i64, 4, 1, 5]).unwrap());
    write(&dir.join("d.npy"), &Array2::from_shape_vec((2, 2), vec![2i64, 6, 3, 7]).unwrap());
    let out = margin()
        .args(["loss", "--loss", "contrastive", "--form", "squared", "--pos-margin", "0", "--neg-margin", "1"])
        .args(["--distance", "euclidean", "--normalize", "false", "--reducer", "mean", "--pooling", "pooled", "--json"])
        .arg("--embeddings").arg(dir.join("e.npy")).arg("--similar").arg(dir.join("s.npy")).arg("--dissimilar").arg(dir.join("d.npy"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(format!("{:.6}", report["loss"].as_f64().unwrap()), "0.093893");
}

#[test]
fn margin_loss_errors_name_the_file_and_the_problem() {
    let dir = scratch("errors");
    write(&dir.join("e.npy"), &Array2::<f32>::zeros((4, 3)));
    write(&dir.join("short.npy"), &Array1::<i64>::zeros(3));
    write(&dir.join("t.npy"), &Array2::from_shape_vec((1, 3), vec![0i64, 1, 9]).unwrap());
    std::fs::write(dir.join("junk.npy"), b"not a numpy file").unwrap();
    let run = |args: &[&str]| {
        let out = margin().arg("loss").args(args).current_dir(&dir).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--embeddings", "e.npy", "--labels", "short.npy", "--loss", "triplet"]);
    assert!(e.contains("3 labels") && e.contains("4 rows"), "{e}");
    let e = run(&["--embeddings", "junk.npy", "--labels", "short.npy", "--loss", "triplet"]);
    assert!(e.contains("junk.npy") && e.contains("not an .npy array"), "{e}");
    // An integer array where embeddings belong is refused naming the dtype it found.
    let e = run(&["--embeddings", "t.npy", "--labels", "short.npy", "--loss", "triplet"]);
    assert!(e.contains("t.npy") && e.contains("float32 or float64"), "{e}");
    let e = run(&["--embeddings", "e.npy", "--labels", "e.npy", "--loss", "triplet"]);
    assert!(e.contains("e.npy") && e.contains("integers"), "{e}");
    let e = run(&["--embeddings", "e.npy", "--triplets", "t.npy", "--loss", "triplet"]);
    assert!(e.contains("t.npy") && e.contains("out of range"), "{e}");
    write(&dir.join("four.npy"), &Array1::<i64>::from(vec![0, 0, 1, 1]));
    let e = run(&["--embeddings", "e.npy", "--labels", "four.npy", "--loss", "triplet", "--miner", "batch-hard", "--epsilon", "0.1"]);
    assert!(e.contains("--epsilon does not apply to --miner batch-hard"), "{e}");
    let e = run(&["--embeddings", "e.npy", "--labels", "four.npy", "--loss", "triplet", "--epsilon", "0.1"]);
    assert!(e.contains("--epsilon configures a miner"), "{e}");
    let e = run(&["--embeddings", "e.npy", "--labels", "four.npy", "--loss", "triplet", "--miner", "batch-easy-hard", "--pos-strategy", "semihard", "--neg-strategy", "semihard"]);
    assert!(e.contains("batch-easy-hard"), "{e}");
    let e = run(&["--embeddings", "missing.npy", "--labels", "short.npy", "--loss", "triplet"]);
    assert!(e.contains("missing.npy"), "{e}");
}

/// Clustered rows `[n, d]` with `classes` labels (a fixed LCG), written as `e.npy` / `l.npy` in `dir`.
fn clustered_batch(dir: &Path, n: usize, d: usize, classes: usize) {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
    };
    let centres: Vec<Vec<f64>> = (0..classes).map(|_| (0..d).map(|_| next()).collect()).collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let e = Array2::from_shape_fn((n, d), |(i, j)| centres[i % classes][j] * (1.0 + 0.3 * (i as f64 / n as f64)) + 0.8 * next());
    write(&dir.join("e.npy"), &e);
    write(&dir.join("l.npy"), &Array1::from(labels));
}

fn mined(dir: &Path, args: &[&str]) -> Array2<i64> {
    let out = margin()
        .arg("loss")
        .args(["--embeddings", "e.npy", "--labels", "l.npy", "--dtype", "f64", "--json", "--mined-out", "m.npy"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Array2::<i64>::read_npy(std::fs::File::open(dir.join("m.npy")).unwrap()).unwrap()
}

/// One rule with `margin train`: the miner mines on the loss's distance unless
/// --miner-distance gives its own (multi-similarity no longer defaults to cosine).
#[test]
fn margin_loss_mines_on_the_loss_distance_unless_the_miner_has_its_own() {
    let dir = scratch("miner-distance");
    clustered_batch(&dir, 24, 6, 4);
    for loss in [["--loss", "contrastive", "--distance", "euclidean"], ["--loss", "triplet", "--distance", "squared-euclidean"]] {
        for m in [&["--miner", "multi-similarity", "--epsilon", "0.1"][..], &["--miner", "pair-margin", "--miner-pos-margin", "0.3", "--miner-neg-margin", "1.1"]] {
            let args = |extra: &[&'static str]| [&loss[..], m, extra].concat();
            let default = mined(&dir, &args(&[]));
            let loss_distance = mined(&dir, &args(&["--miner-distance", loss[3], "--miner-normalize", "true"]));
            assert_eq!(default, loss_distance, "{loss:?} {m:?}: mined on the loss's distance");
        }
        // The loss's distance without normalisation: --miner-normalize alone changes only that.
        let m = ["--miner", "batch-hard"];
        let unnormalized = mined(&dir, &[&loss[..], &m, &["--normalize", "false"]].concat());
        let explicit = mined(&dir, &[&loss[..], &m, &["--normalize", "false", "--miner-distance", loss[3], "--miner-normalize", "false"]].concat());
        assert_eq!(unnormalized, explicit, "{loss:?}");
        let renormalized = mined(&dir, &[&loss[..], &m, &["--normalize", "false", "--miner-normalize", "true"]].concat());
        let normalized = mined(&dir, &[&loss[..], &m].concat());
        assert_eq!(renormalized, normalized, "{loss:?}");
    }
    // PML's default for multi-similarity is one flag away, and differs here.
    let base = ["--loss", "contrastive", "--distance", "euclidean", "--normalize", "false", "--miner", "multi-similarity"];
    let cosine = mined(&dir, &[&base[..], &["--miner-distance", "cosine"]].concat());
    assert_ne!(mined(&dir, &base), cosine, "the batch is chosen so that the distance matters");
    let help = margin().args(["loss", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("the loss's --distance") && help.contains("--miner-distance cosine"), "{help}");
}

/// The `--miner` values are exactly the library's miner kinds, and each runs.
#[test]
fn margin_loss_offers_every_miner_kind() {
    let out = margin().args(["loss", "--embeddings", "e.npy", "--labels", "l.npy", "--loss", "triplet", "--miner", "no-such-miner"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let values = err.split("[possible values: ").nth(1).and_then(|r| r.split(']').next()).unwrap_or_else(|| panic!("{err}"));
    let values: Vec<&str> = values.split(", ").collect();
    assert_eq!(values, margin::MinerConfig::NAMES, "the CLI's --miner values and MinerConfig's kinds");
    let dir = scratch("kinds");
    clustered_batch(&dir, 24, 6, 4);
    for name in margin::MinerConfig::NAMES {
        let rows = mined(&dir, &["--loss", "triplet", "--miner", name]);
        assert!(rows.nrows() > 0, "{name} mined nothing");
    }
}

/// Every miner parameter has a flag; a flag of another miner is refused.
#[test]
fn margin_loss_miner_flags() {
    let dir = scratch("miner-flags");
    clustered_batch(&dir, 24, 6, 4);
    let t = ["--loss", "triplet"];
    let beh = ["--miner", "batch-easy-hard", "--pos-strategy", "easy", "--neg-strategy", "hard"];
    let hardest = mined(&dir, &[&t[..], &beh].concat());
    // Negatives closer than 0.9 (the hardest ones here) are never chosen.
    let ranged = mined(&dir, &[&t[..], &beh, &["--allowed-neg-range", "0.9", "2"]].concat());
    assert!(ranged.nrows() > 0 && ranged != hardest, "{ranged:?} vs {hardest:?}");
    let ranged_pos = mined(&dir, &[&t[..], &beh, &["--allowed-pos-range", "0.5", "2"]].concat());
    assert!(ranged_pos != hardest, "{ranged_pos:?}");
    mined(&dir, &[&t[..], &["--miner", "semihard-facenet", "--fallback", "hardest"]].concat());
    mined(&dir, &[&t[..], &["--miner", "distance-weighted", "--cutoff", "0.4", "--nonzero-loss-cutoff", "1.5"]].concat());
    let run = |args: &[&str]| {
        let out = margin().arg("loss").args(["--embeddings", "e.npy", "--labels", "l.npy"]).args(args).current_dir(&dir).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&[&t[..], &["--miner", "batch-hard", "--fallback", "hardest"]].concat());
    assert!(e.contains("--fallback does not apply to --miner batch-hard"), "{e}");
    let e = run(&[&t[..], &["--miner", "pair-margin", "--allowed-pos-range", "0", "1"]].concat());
    assert!(e.contains("--allowed-pos-range does not apply to --miner pair-margin"), "{e}");
    let e = run(&[&t[..], &["--allowed-neg-range", "0", "1"]].concat());
    assert!(e.contains("--allowed-neg-range configures a miner"), "{e}");
    let e = run(&[&t[..], &["--miner", "distance-weighted", "--miner-distance", "cosine"]].concat());
    assert!(e.contains("does not apply to --miner distance-weighted"), "{e}");
    let e = run(&["--loss", "triplet", "--distance", "cosine", "--miner", "batch-hard", "--miner-normalize", "false"]);
    assert!(e.contains("always normalises"), "{e}");
}

/// `--miner-table` takes the config file's `[train.miner]` table: the same miner as the
/// flags (and as `margin train` would build), unknown fields refused by name.
#[test]
fn margin_loss_takes_the_config_files_miner_table() {
    let dir = scratch("miner-table");
    clustered_batch(&dir, 24, 6, 4);
    let c = ["--loss", "contrastive", "--distance", "euclidean"];
    for (flags, table) in [
        (&["--miner", "multi-similarity", "--epsilon", "0.2"][..], r#"kind = "multi-similarity", epsilon = 0.2"#),
        (&["--miner", "pair-margin", "--miner-pos-margin", "0.3", "--miner-neg-margin", "1.1"], r#"kind = "pair-margin", pos_margin = 0.3, neg_margin = 1.1"#),
        (&["--miner", "multi-similarity", "--miner-distance", "cosine"], r#"kind = "multi-similarity", distance = "cosine""#),
        (&["--miner", "batch-easy-hard", "--neg-strategy", "hard", "--allowed-neg-range", "0.9", "2"], r#"kind = "batch-easy-hard", neg_strategy = "hard", allowed_neg_range = { low = 0.9, high = 2.0 }"#),
    ] {
        let by_flags = mined(&dir, &[&c[..], flags].concat());
        let by_table = mined(&dir, &[&c[..], &["--miner-table", table]].concat());
        assert_eq!(by_flags, by_table, "{table}");
    }
    let out = margin()
        .arg("loss")
        .args(["--embeddings", "e.npy", "--labels", "l.npy", "--loss", "contrastive", "--miner-table", r#"kind = "multi-similarity", margin = 0.1"#])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown field `margin`") && err.contains("epsilon"), "{err}");
}

/// The golden cases of the losses with class parameters (margin's own test data, from PML 2.9:
/// `crates/margin/tests/data/make_param_losses_golden.py`).
fn param_golden() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../margin/tests/data/param_losses_golden.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// A golden case's options as `margin loss` flags (margin's option names → flags).
fn option_flags(case: &Value) -> Vec<String> {
    let mut flags = Vec::new();
    for (k, v) in case["options"].as_object().unwrap() {
        let flag = match k.as_str() {
            "margin_degrees" | "margin" => "--margin".to_string(),
            other => format!("--{}", other.replace('_', "-")),
        };
        flags.push(flag);
        flags.push(if k == "centers_per_class" { v.as_u64().unwrap().to_string() } else { v.as_f64().unwrap().to_string() });
    }
    flags
}

/// The `LossSpec` of a golden case, as the config file would say it.
fn case_spec(case: &Value) -> margin_train::LossSpec {
    let mut t = toml::Table::new();
    t.insert("kind".into(), toml::Value::String(case["kind"].as_str().unwrap().into()));
    for (k, v) in case["options"].as_object().unwrap() {
        let v = if k == "centers_per_class" { toml::Value::Integer(v.as_i64().unwrap()) } else { toml::Value::Float(v.as_f64().unwrap()) };
        t.insert(k.clone(), v);
    }
    toml::Value::Table(t).try_into().unwrap()
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    (a - b).mapv(f64::abs).fold(0.0f64, |m, &v| m.max(v))
}

/// Every golden case of the losses with class parameters through `margin loss --params`:
/// the value and both gradients equal PML's (float64), and equal the library's
/// (`ParamLoss`, what `margin train` builds) on the same inputs bit for bit.
#[test]
fn margin_loss_with_class_parameters_reproduces_pml_and_the_library() {
    use margin::burn::tensor::{DType, Device, Tensor, TensorData};
    let dir = scratch("param-golden");
    let cases = param_golden();
    assert_eq!(cases.len(), 12);
    let mut kinds = std::collections::BTreeSet::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        kinds.insert(kind);
        let (x, w) = (matrix(&case["embeddings"]), matrix(&case["params"]));
        let labels: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let c = case["num_classes"].as_u64().unwrap() as usize;
        write(&dir.join("e.npy"), &x);
        write(&dir.join("w.npy"), &w);
        write(&dir.join("l.npy"), &Array1::from(labels.clone()));
        let out = margin()
            .args(["loss", "--embeddings", "e.npy", "--labels", "l.npy", "--params", "w.npy", "--dtype", "f64", "--json"])
            .args(["--loss", &kind.replace('_', "-"), "--num-classes", &c.to_string()])
            .args(option_flags(case))
            .args(["--grad-out", "g.npy", "--param-grad-out", "gw.npy", "--params-out", "w2.npy"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["loss_function"], kind, "{name}");
        assert_eq!(report["parameters"]["num_classes"].as_u64(), Some(c as u64), "{name}");
        let value = report["loss"].as_f64().unwrap();
        let want = case["loss"].as_f64().unwrap();
        assert!((value - want).abs() <= 1e-10 * want.abs() + 1e-12, "{name}: loss {value} vs PML's {want}");
        let read = |f: &str| Array2::<f64>::read_npy(std::fs::File::open(dir.join(f)).unwrap()).unwrap();
        let (gx, gw) = (read("g.npy"), read("gw.npy"));
        assert!(max_abs_diff(&gx, &matrix(&case["grad"])) <= 1e-8, "{name}: ∂/∂x vs PML");
        assert!(max_abs_diff(&gw, &matrix(&case["param_grad"])) <= 1e-8, "{name}: ∂/∂W vs PML");
        assert_eq!(read("w2.npy"), w, "{name}: --params-out writes the parameters used");
        // The library on the same inputs.
        let device = Device::flex().autodiff();
        let t = |a: &Array2<f64>| Tensor::<2>::from_data(TensorData::new(a.iter().copied().collect::<Vec<_>>(), [a.nrows(), a.ncols()]), (&device, DType::F64)).require_grad();
        let (xt, wt) = (t(&x), t(&w));
        let loss = margin_train::param_loss::ParamLoss::init_with(&case_spec(case), c, x.ncols(), wt).unwrap();
        let lib = loss.as_metric().forward(margin::Batch::labelled(xt.clone(), &labels), margin::Tuples::All).unwrap();
        // (The JSON text round trip may move the last bit: serde_json parses without float_roundtrip.)
        let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() <= 2.0 * f64::EPSILON * b.abs(),
            _ => a == b,
        };
        assert!(same(&report["loss"], &serde_json::json!(lib.stats.loss)), "{name}: the CLI's value is the library's");
        let grads = lib.loss.backward();
        assert_eq!(gx.iter().copied().collect::<Vec<_>>(), margin::to_host(&xt.grad(&grads).unwrap()), "{name}: ∂/∂x");
        assert_eq!(gw.iter().copied().collect::<Vec<_>>(), margin::to_host(&loss.params().grad(&grads).unwrap()), "{name}: ∂/∂W");
        for key in ["num_tuples", "num_active", "active_fraction", "mean_ap_dist", "mean_an_dist"] {
            assert!(same(&report[key], &serde_json::to_value(lib.stats).unwrap()[key]), "{name}: {key}");
        }
    }
    assert_eq!(kinds.len(), 6, "every loss with class parameters: {kinds:?}");
}

/// `--seed N` draws the parameters as `margin train` with `seed = N` does (for C = the
/// largest label + 1, or --num-classes); the drawn parameters through `--params` give the same value.
#[test]
fn margin_loss_seeded_parameters_are_the_trainers() {
    let dir = scratch("param-seed");
    clustered_batch(&dir, 24, 6, 4);
    for (loss, extra, rows_per_class) in [
        ("proxy-anchor", &[][..], 1),
        ("arcface", &["--scale", "16"][..], 1),
        ("soft-triple", &["--centers-per-class", "3"][..], 3),
        ("normalized-softmax", &["--num-classes", "9"][..], 1),
    ] {
        let run = |more: &[&str]| {
            let out = margin()
                .args(["loss", "--embeddings", "e.npy", "--labels", "l.npy", "--dtype", "f64", "--json", "--loss", loss])
                .args(extra)
                .args(more)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "{loss}: {}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        let seeded = run(&["--seed", "7", "--params-out", "p.npy"]);
        let classes = if loss == "normalized-softmax" { 9 } else { 4 };
        assert_eq!(seeded["parameters"]["num_classes"].as_u64(), Some(classes as u64), "{loss}");
        let drawn = Array2::<f64>::read_npy(std::fs::File::open(dir.join("p.npy")).unwrap()).unwrap();
        assert_eq!(drawn.dim(), (classes * rows_per_class, 6), "{loss}");
        let mut cfg = margin_train::TrainConfig::omniglot_default();
        cfg.seed = 7;
        let table: toml::Table = toml::from_str(&format!("kind = \"{}\"\n{}", loss.replace('-', "_"), spec_lines(extra))).unwrap();
        cfg.loss = toml::Value::Table(table).try_into().unwrap();
        let trainer = margin_train::param_loss::init_for_run(&cfg, classes, 6, &margin::burn::tensor::Device::flex()).unwrap().param_values();
        assert_eq!(drawn.iter().copied().collect::<Vec<_>>(), trainer, "{loss}: the trainer's draw for seed 7");
        let given = run(&["--params", "p.npy"]);
        assert_eq!(given["loss"], seeded["loss"], "{loss}: the drawn parameters, given back");
        let other = run(&["--seed", "8"]);
        assert_ne!(other["loss"], seeded["loss"], "{loss}: another seed, other parameters");
    }
}

/// `--scale 16` → `scale = 16` (the flags of `margin_loss_seeded_parameters_are_the_trainers`).
fn spec_lines(flags: &[&str]) -> String {
    flags
        .chunks(2)
        .filter(|f| f[0] != "--num-classes")
        .map(|f| format!("{} = {}\n", f[0].trim_start_matches("--").replace('-', "_"), f[1]))
        .collect()
}

/// The `--loss` values are margin-train's `LossSpec` kinds (kebab-case), each parametric
/// one a loss with class parameters there.
#[test]
fn margin_loss_kinds_are_the_configs_loss_kinds() {
    let out = margin().args(["loss", "--embeddings", "e.npy", "--labels", "l.npy", "--loss", "no-such-loss"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let values = err.split("[possible values: ").nth(1).and_then(|r| r.split(']').next()).unwrap_or_else(|| panic!("{err}"));
    let values: Vec<&str> = values.split(", ").collect();
    assert_eq!(values.len(), 8, "{values:?}");
    for v in values {
        let spec: margin_train::LossSpec = toml::from_str(&format!("kind = \"{}\"", v.replace('-', "_"))).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(spec.is_parametric(), !matches!(v, "triplet" | "contrastive"), "{v}");
    }
}
