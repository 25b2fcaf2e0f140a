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
    assert!(e.contains("junk.npy") && e.contains("float32 or float64"), "{e}");
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
