//! The search commands end to end, in one test (one small training serves every step):
//! `margin train` on a generated image folder without validation classes (the calibration
//! share of the training classes is held out and calibrates the card's thresholds and its
//! dedup threshold), an index of the separate test images built through the embed path,
//! search by image path, `index add|remove` by a folder through the model, verify a genuine and an impostor test pair at the card's
//! thresholds, dedup a folder with planted exact and near duplicates (JPEG re-encoded,
//! re-quantised, resized, cropped copies) at the card's dedup threshold with precision and
//! recall of the planted pairs printed and held to a floor; an index of another model, and
//! of precomputed embeddings, refused by `--model` searches.

#[path = "bad_input/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SIZE: usize = 16;

fn margin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").env_remove("RUST_BACKTRACE").output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = margin(args);
    assert!(out.status.success(), "margin {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(args: &[&str]) -> String {
    let out = margin(args);
    assert!(!out.status.success(), "margin {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A unique smooth texture: three seeded blobs, drawn at `side × side` over a 16-unit field.
fn texture(seed: u64, side: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f32 / (1u64 << 53) as f32
    };
    let blobs: Vec<(f32, f32, f32, f32)> = (0..3).map(|_| (next() * 16.0, next() * 16.0, 1.5 + 3.0 * next(), 60.0 + 180.0 * next())).collect();
    let k = 16.0 / side as f32;
    (0..side * side)
        .map(|p| {
            let (y, x) = ((p / side) as f32 * k, (p % side) as f32 * k);
            blobs.iter().map(|&(by, bx, r, a)| a * (-((y - by).powi(2) + (x - bx).powi(2)) / (2.0 * r * r)).exp()).sum::<f32>().min(255.0)
        })
        .collect()
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().map(|x| x.round().clamp(0.0, 255.0) as u8).collect()
}

fn pgm(path: &Path, v: &[f32], w: usize, h: usize) {
    let mut b = format!("P5 {w} {h} 255\n").into_bytes();
    b.extend(bytes(v));
    std::fs::write(path, b).unwrap();
}

fn jpeg(path: &Path, v: &[f32], w: usize, h: usize) {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75).encode(&bytes(v), w as u32, h as u32, image::ExtendedColorType::L8).unwrap();
    std::fs::write(path, out).unwrap();
}

/// `count` texture classes named `{prefix}NN` under `root`, `per` draws each (shifted, with
/// seeded noise).
fn classes(root: &Path, prefix: &str, seed: u64, count: u64, per: usize) {
    for c in 0..count {
        let d = root.join(format!("{prefix}{c:02}"));
        std::fs::create_dir_all(&d).unwrap();
        let t = texture(seed + c, SIZE + 2);
        for i in 0..per {
            let (dy, dx) = (i % 3, (i / 3) % 3);
            let img: Vec<f32> = (0..SIZE * SIZE).map(|p| t[(p / SIZE + dy) * (SIZE + 2) + p % SIZE + dx] + ((p * 13 + i * 5) % 21) as f32 - 10.0).collect();
            pgm(&d.join(format!("{i}.pgm")), &img, SIZE, SIZE);
        }
    }
}

fn train(dir: &Path, name: &str, seed: u64, split: &str, epochs: usize) -> PathBuf {
    let cfg = format!(
        "[data]\nkind = \"image_folder\"\npath = \"{}\"\ntest = \"{}\"\nimage_size = {SIZE}\n\n[split]\n{split}\n\n[train]\nseed = {seed}\nepochs = {epochs}\nlr = 3e-3\n\n\
         [train.augment]\nmax_shift = 1.0\nmax_rotation_deg = 5.0\n\n\
         [train.model]\nkind = \"convnet4\"\nwidth = 8\nembedding_dim = 16\nnormalize = true\n\n[train.loss]\nkind = \"triplet\"\nmargin = 0.2\n\n\
         [train.miner]\nkind = \"batch-hard\"\n\n[train.sampler]\nclasses_per_batch = 4\nsamples_per_class = 4\n",
        dir.join("tex").display(),
        dir.join("test").display()
    );
    std::fs::write(dir.join(format!("{name}.toml")), cfg).unwrap();
    let run = dir.join(name);
    ok(&["train", "--config", dir.join(format!("{name}.toml")).to_str().unwrap(), "--out", run.to_str().unwrap(), "-q", "--no-eval", "--batches-per-epoch", "4"]);
    run
}

/// The card's held-out classes: a calibration share of `count` training classes, disjoint
/// from the test classes and from the classes trained on.
fn check_calibration_share(run: &Path, count: usize, pool: &BTreeSet<String>, test: &BTreeSet<String>) {
    let card = json(&run.join("model.json"));
    let h = &card["thresholds"]["held_out"];
    assert_eq!(h["kind"], "calibration_share", "{card}");
    let held: BTreeSet<String> = h["classes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(held.len(), count, "{h}");
    assert!(held.is_subset(pool) && held.is_disjoint(test), "{h}");
    let m = json(&run.join("metrics.json"));
    assert_eq!(m["train"]["classes"].as_u64().unwrap() as usize + count, pool.len(), "trained on the rest: {}", m["train"]);
    assert!(card["thresholds"]["source"].as_str().unwrap().starts_with("calibration share of the training classes"), "{card}");
    assert!(h["rule"].as_str().unwrap().contains("seeded shuffle"), "{h}");
}

/// Precision and recall of `planted` pairs among the pairs dedup's groups make.
fn precision_recall(groups: &Value, planted: &[(String, String)]) -> (f64, f64, usize) {
    let mut found = Vec::new();
    for g in groups["groups"].as_array().unwrap() {
        let mut all: Vec<&str> = vec![g["representative"].as_str().unwrap()];
        all.extend(g["members"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()));
        for a in 0..all.len() {
            for b in a + 1..all.len() {
                found.push((all[a].to_string(), all[b].to_string()));
            }
        }
    }
    let is_planted = |(a, b): &(String, String)| planted.iter().any(|(x, y)| (x == a && y == b) || (x == b && y == a));
    let tp = found.iter().filter(|p| is_planted(p)).count();
    let precision = if found.is_empty() { 0.0 } else { tp as f64 / found.len() as f64 };
    (precision, tp as f64 / planted.len() as f64, found.len())
}

/// A pool of 60 unique textures and 20 planted copies of the first 20: exact, JPEG
/// re-encoded, re-quantised (±3 levels), resized (drawn at 12 × 12), cropped (14 × 14).
fn dedup_pool(pool: &Path) -> Vec<(String, String)> {
    for i in 0..60 {
        let d = pool.join(format!("set{}", i % 4));
        std::fs::create_dir_all(&d).unwrap();
        pgm(&d.join(format!("img{i:02}.pgm")), &texture(i as u64 + 1, SIZE), SIZE, SIZE);
    }
    std::fs::create_dir_all(pool.join("copies")).unwrap();
    let mut planted = Vec::new();
    for i in 0..20usize {
        let orig = format!("set{}/img{i:02}.pgm", i % 4);
        let t = texture(i as u64 + 1, SIZE);
        let file = match i % 5 {
            0 => {
                pgm(&pool.join(format!("copies/exact{i:02}.pgm")), &t, SIZE, SIZE);
                format!("copies/exact{i:02}.pgm")
            }
            1 => {
                jpeg(&pool.join(format!("copies/jpeg{i:02}.jpg")), &t, SIZE, SIZE);
                format!("copies/jpeg{i:02}.jpg")
            }
            2 => {
                let v: Vec<f32> = t.iter().enumerate().map(|(p, v)| v + ((p * 7 + i) % 7) as f32 - 3.0).collect();
                pgm(&pool.join(format!("copies/requant{i:02}.pgm")), &v, SIZE, SIZE);
                format!("copies/requant{i:02}.pgm")
            }
            3 => {
                pgm(&pool.join(format!("copies/resized{i:02}.pgm")), &texture(i as u64 + 1, 12), 12, 12);
                format!("copies/resized{i:02}.pgm")
            }
            _ => {
                let v: Vec<f32> = (0..14 * 14).map(|p| t[(p / 14 + 1) * SIZE + p % 14 + 1]).collect();
                pgm(&pool.join(format!("copies/cropped{i:02}.pgm")), &v, 14, 14);
                format!("copies/cropped{i:02}.pgm")
            }
        };
        planted.push((orig, file));
    }
    planted
}

#[test]
fn train_index_search_verify_and_dedup_end_to_end() {
    let started = std::time::Instant::now();
    let dir = harness::scratch("search-model-e2e");
    classes(&dir.join("tex"), "t", 2000, 24, 8);
    classes(&dir.join("test"), "u", 5000, 6, 4);
    let pool: BTreeSet<String> = (0..24).map(|c| format!("t{c:02}")).collect();
    let test: BTreeSet<String> = (0..6).map(|c| format!("u{c:02}")).collect();
    // No validation classes: a calibration share of 0.3 of the 24 training classes (7).
    let run = train(&dir, "run", 0, "calibration_fraction = 0.3", 6);
    check_calibration_share(&run, 7, &pool, &test);
    // Unset: the default share, 0.1 (max(2, round(2.4)) = 2 classes), written into the
    // run's config.toml so a resume holds out the same classes.
    let other = train(&dir, "other", 1, "", 1);
    check_calibration_share(&other, 2, &pool, &test);
    assert!(std::fs::read_to_string(other.join("config.toml")).unwrap().contains("calibration_fraction = 0.1"));
    let card = json(&run.join("model.json"));
    let t = &card["thresholds"];
    // 7 classes × 8 images: every pair used, 7 · 28 genuine.
    assert_eq!((t["n_genuine"].as_u64(), t["n_impostor"].as_u64()), (Some(7 * 28), Some(56 * 55 / 2 - 7 * 28)), "{t}");
    let d = &card["dedup"];
    assert_eq!((d["n_duplicate"].as_u64(), d["n_different"].as_u64()), (Some(56), Some(56 * 55 / 2)), "{d}");
    assert!(d["copies"].as_str().unwrap().contains("JPEG re-encoding") && d["copies"].as_str().unwrap().contains("max_shift 1"), "{d}");
    assert_eq!(d["default_rate"].as_f64(), Some(1e-2), "1,540 different pairs resolve 1e-2 only: {d}");
    println!("card thresholds: {t}\ncard dedup: {d}");

    // An index of the test images (never trained on, never calibrated on).
    let (r, tdir, idx) = (run.to_str().unwrap(), dir.join("test"), dir.join("g.idx"));
    let (tdir, idx) = (tdir.to_str().unwrap(), idx.to_str().unwrap());
    let said = ok(&["index", "build", "-q", "--model", r, "--input", tdir, "--out", idx]);
    assert!(said.contains("indexed 24 items (16-d"), "{said}");
    let info: Value = serde_json::from_str(&ok(&["index", "info", idx, "--json"])).unwrap();
    assert!(info["fingerprint"].as_str().unwrap().contains("model.safetensors sha256:"), "{info}");
    let v: Value = serde_json::from_str(&ok(&["search", "--index", idx, "--model", r, "--input", tdir, "-k", "3", "--json"])).unwrap();
    for q in v.as_array().unwrap() {
        assert_eq!(q["query"], q["neighbors"][0]["id"], "every image finds itself first: {q}");
    }
    assert_eq!(v[0]["query"], "u00/0.pgm");
    // index add through the model: new images embedded the same way, fingerprint checked;
    // index remove by the same folder's paths.
    classes(&dir.join("more"), "v", 7000, 2, 4);
    let more = dir.join("more");
    let more = more.to_str().unwrap();
    let said = ok(&["index", "add", "--index", idx, "--model", r, "--input", more]);
    assert!(said.contains("added 8 items") && said.contains("(32 items)"), "{said}");
    let v: Value = serde_json::from_str(&ok(&["search", "--index", idx, "--model", r, "--input", more, "-k", "1", "--json"])).unwrap();
    assert!(v.as_array().unwrap().iter().all(|q| q["query"] == q["neighbors"][0]["id"]), "{v}");
    let e = err(&["index", "add", "--index", idx, "--model", other.to_str().unwrap(), "--input", more]);
    assert!(e.contains("built by model"), "{e}");
    let e = err(&["index", "remove", "--index", idx, "--input", more, "--model", other.to_str().unwrap()]);
    assert!(e.contains("built by model"), "{e}");
    let said = ok(&["index", "remove", "--index", idx, "--input", more, "--model", r]);
    assert!(said.contains("removed 8 items") && said.contains("(24 items left)"), "{said}");
    // Another model's vectors, and an index of precomputed embeddings: refused.
    let e = err(&["search", "--index", idx, "--model", other.to_str().unwrap(), "--input", tdir, "-k", "3"]);
    assert!(e.contains("built by model") && e.contains("re-index"), "{e}");
    let npy = dir.join("e.npy");
    ok(&["embed", "--model", r, "--input", tdir, "--out", npy.to_str().unwrap()]);
    let idx2 = dir.join("pre.idx");
    ok(&["index", "build", "-q", "--embeddings", npy.to_str().unwrap(), "--out", idx2.to_str().unwrap()]);
    assert!(err(&["search", "--index", idx2.to_str().unwrap(), "--model", r, "--input", tdir]).contains("records no model"));

    // Verify: a genuine test pair at the card's EER threshold, an impostor at FAR 1e-2
    // (at the EER about one impostor pair in ten matches by design).
    let genuine = ok(&["verify", "--model", r, "--input", tdir, "u00/0.pgm", "u00/1.pgm"]);
    assert!(genuine.contains("EER threshold") && genuine.contains("calibration share"), "{genuine}");
    let imp: Value = serde_json::from_str(ok(&["verify", "--model", r, "--input", tdir, "u00/0.pgm", "u01/0.pgm", "--json", "--far", "1e-2"]).trim()).unwrap();
    println!("genuine: {genuine}impostor: {imp}");
    assert!(genuine.contains("same"), "{genuine}");
    assert_eq!(imp["match"], false, "{imp}");
    assert!(imp["threshold_source"].as_str().unwrap().contains("FAR 1e-2"), "{imp}");
    assert!(err(&["verify", "--model", r, "--input", tdir, "u00/0.pgm", "u00/1.pgm", "--far", "1e-3"]).contains("not estimable"));
    assert!(err(&["verify", "--model", r, "--input", tdir, "u00/0.pgm", "u00/1.pgm", "--far", "1e-2", "--metric", "cosine"]).contains("euclidean distances"));

    // Dedup at the card's own dedup threshold (the default), then at the identity-level one.
    let pool_dir = dir.join("pool");
    let planted = dedup_pool(&pool_dir);
    let out = dir.join("groups.json");
    let (p, o) = (pool_dir.to_str().unwrap(), out.to_str().unwrap());
    let said = ok(&["dedup", "-q", "--model", r, "--input", p, "--out", o]);
    assert!(said.contains("dedup threshold at false-duplicate rate 1e-2"), "{said}");
    let groups = json(&out);
    assert!(groups["threshold_source"].as_str().unwrap().contains("dedup threshold"), "{groups}");
    let (precision, recall, found) = precision_recall(&groups, &planted);
    println!("dedup at the card's dedup threshold {}: {found} pairs, precision {precision:.3}, recall {recall:.3} of {} planted", groups["threshold"], planted.len());
    // Measured (2026-12-01; seeded, the same on every run): precision 1.000, recall 0.750
    // (15 of the 20 planted pairs, no other pair). The floors sit below.
    assert!(precision >= 0.85 && recall >= 0.6, "precision {precision:.3}, recall {recall:.3}");
    for kind in ["exact", "jpeg", "requant", "resized", "cropped"] {
        let of_kind: Vec<(String, String)> = planted.iter().filter(|(_, c)| c.contains(kind)).cloned().collect();
        println!("  {kind}: recall {:.2}", precision_recall(&groups, &of_kind).1);
    }
    assert_eq!(precision_recall(&groups, &planted[..1]).1, 1.0, "an exact copy is always found");
    let said = ok(&["dedup", "-q", "--model", r, "--input", p, "--out", o, "--far", "1e-2"]);
    assert!(said.contains("FAR 1e-2"), "--far switches to the identity-level threshold: {said}");
    let (pf, rf, nf) = precision_recall(&json(&out), &planted);
    println!("dedup at the identity-level FAR 1e-2 threshold: {nf} pairs, precision {pf:.3}, recall {rf:.3}");
    let html = std::fs::read_to_string(dir.join("groups.html")).unwrap();
    assert!(html.contains("copies/exact00.pgm"), "the page lists the groups");
    println!("end-to-end wall time {:.1} s", started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&dir);
}
