//! `margin eval` end to end: known answers on separable data, and errors that name the input.

use std::path::PathBuf;
use std::process::Command;

use ndarray::{Array1, Array2};
use ndarray_npy::WriteNpyExt;
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("margin-eval-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn eval(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).arg("eval").args(args).output().unwrap()
}

/// 6 classes of 8 points around far-apart centres: every metric is perfect.
fn separable(dir: &std::path::Path) -> (String, String) {
    let (classes, per, dim) = (6usize, 8usize, 4usize);
    let e = Array2::from_shape_fn((classes * per, dim), |(i, j)| {
        let c = i / per;
        let centre = if j == c % dim { 100.0 * (1 + c / dim) as f32 } else { 0.0 };
        centre + ((i * 7 + j * 3) % 5) as f32 * 0.01
    });
    let l = Array1::from_shape_fn(classes * per, |i| (i / per) as i32 * 10 + 3);
    let (ep, lp) = (dir.join("e.npy"), dir.join("l.npy"));
    e.write_npy(std::fs::File::create(&ep).unwrap()).unwrap();
    l.write_npy(std::fs::File::create(&lp).unwrap()).unwrap();
    (ep.display().to_string(), lp.display().to_string())
}

#[test]
fn margin_eval_gives_perfect_metrics_on_separable_classes() {
    let dir = scratch("perfect");
    let (e, l) = separable(&dir);
    let out = eval(&["--embeddings", &e, "--labels", &l, "--json", "--episodes", "3,1,50", "--episode-queries", "4"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = r.to_string();
    for key in ["precision_at_1", "r_precision", "map_at_r"] {
        let v = find(&r, key).unwrap_or_else(|| panic!("{key} missing in {text}"));
        assert!((v - 1.0).abs() < 1e-12, "{key} = {v}");
    }
    let auc = find(&r, "auc").expect("auc reported");
    assert!((auc - 1.0).abs() < 1e-12, "auc = {auc}");
    // The table form prints the same numbers for people.
    let out = eval(&["--embeddings", &e, "--labels", &l]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("MAP@R"), "{table}");
}

#[test]
fn margin_eval_errors_name_the_input() {
    let dir = scratch("errors");
    let (e, _) = separable(&dir);
    let short = dir.join("short.npy");
    Array1::<i64>::zeros(5).write_npy(std::fs::File::create(&short).unwrap()).unwrap();
    let out = eval(&["--embeddings", &e, "--labels", short.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("5") && err.contains("48"), "{err}");
    let nan = dir.join("nan.npy");
    let mut m = Array2::<f32>::zeros((4, 2));
    m[[2, 1]] = f32::NAN;
    m.write_npy(std::fs::File::create(&nan).unwrap()).unwrap();
    let l4 = dir.join("l4.npy");
    Array1::<i64>::from(vec![0, 0, 1, 1]).write_npy(std::fs::File::create(&l4).unwrap()).unwrap();
    let out = eval(&["--embeddings", nan.to_str().unwrap(), "--labels", l4.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 2"), "{err}");
}

/// First number stored under `key` anywhere in the report.
fn find(v: &Value, key: &str) -> Option<f64> {
    match v {
        Value::Object(m) => m.get(key).and_then(Value::as_f64).or_else(|| m.values().find_map(|x| find(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}

/// `--labels` takes the `.txt` class names `margin embed --labels-out` writes: the report
/// equals the one of the same labels as integers (names sorting in another order than the
/// integers, and labels that do not follow the clusters, so the metrics are not all 1);
/// query and reference `.txt` files share one class table.
#[test]
fn margin_eval_reads_txt_label_files_as_class_names() {
    let dir = scratch("txt");
    let (e, _) = separable(&dir);
    let ints: Vec<i64> = (0..48).map(|i| ((i / 8 + i % 3) % 6) as i64).collect();
    Array1::from(ints.clone()).write_npy(std::fs::File::create(dir.join("l.npy")).unwrap()).unwrap();
    let names = ["zed", "amy", "kai", "bo", "yan", "cy"];
    let text: String = ints.iter().map(|&k| format!("{}\r\n", names[k as usize])).collect();
    std::fs::write(dir.join("l.txt"), text).unwrap();
    let report = |labels: &str, extra: &[&str]| {
        let p = dir.join(labels).display().to_string();
        let mut args = vec!["--embeddings", &e, "--labels", &p, "--json"];
        args.extend_from_slice(extra);
        let out = eval(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut r: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Timings vary; a skipped section's reason names the labels file.
        for k in ["seconds", "skipped"] {
            r.as_object_mut().unwrap().remove(k);
        }
        r
    };
    let from_ints = report("l.npy", &[]);
    let map = find(&from_ints, "map_at_r").unwrap();
    assert!(map < 0.9, "the labels do not follow the clusters: MAP@R {map}");
    assert_eq!(report("l.txt", &[]), from_ints);
    let (rn, rt) = (dir.join("l.npy").display().to_string(), dir.join("l.txt").display().to_string());
    let with_ref = |l: &str, r: &str| report(l, &["--reference-embeddings", &e, "--reference-labels", r]);
    assert_eq!(with_ref("l.txt", &rt), with_ref("l.npy", &rn), "query and reference names in one table");
    std::fs::write(dir.join("gap.txt"), "amy\n\nbo\n").unwrap();
    let out = eval(&["--embeddings", &e, "--labels", dir.join("gap.txt").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("gap.txt") && err.contains("line 2"), "{err}");
}
