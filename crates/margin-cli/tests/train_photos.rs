//! End to end on photo-like data (issue 12): a generated folder of RGB JPEGs, a training
//! folder and a separate test folder whose classes have their own names (both numbered
//! from 0 inside), ConvNet-4 on 3-channel input with the typed preprocessing; the run
//! writes its report (photo augmentation on), the card records the preprocessing, and `margin embed` applies it
//! to the test folder and writes the class names. A class in both folders is refused,
//! naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-photos-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn margin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

/// A photo-like picture of class `c`: a coloured disc on a gradient, placed, sized and
/// lit by `k`. Classes differ by the disc's colour and the background's direction.
fn picture(c: usize, k: usize) -> image::RgbImage {
    let (w, h) = (48 + (k % 3) as u32 * 8, 40 + (k % 2) as u32 * 8);
    let hue = [[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 200, 40], [200, 60, 200], [40, 200, 210]][c % 6];
    let (cx, cy) = (w as f32 * (0.35 + 0.06 * (k % 4) as f32), h as f32 * (0.4 + 0.05 * (k % 3) as f32));
    let r = 9.0 + (k % 5) as f32;
    let light = 0.8 + 0.05 * (k % 4) as f32;
    image::RgbImage::from_fn(w, h, |x, y| {
        let t = if c % 2 == 0 { x as f32 / w as f32 } else { y as f32 / h as f32 };
        let bg = (60.0 + 120.0 * t) * light;
        let inside = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r;
        let px = |i: usize| if inside { hue[i] as f32 * light } else { bg * (0.6 + 0.2 * i as f32) };
        image::Rgb([px(0).min(255.0) as u8, px(1).min(255.0) as u8, px(2).min(255.0) as u8])
    })
}

fn folder(root: &Path, classes: &[(&str, usize)], per_class: usize) {
    for (name, c) in classes {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for k in 0..per_class {
            picture(*c, k).save_with_format(d.join(format!("img{k:02}.jpg")), image::ImageFormat::Jpeg).unwrap();
        }
    }
}

/// `dir/train` (anna, boris, chen: 8 pictures each) and `dir/test` (dara, emeka, femi: 6 each).
fn photo_sets(dir: &Path) -> (PathBuf, PathBuf) {
    let (train, test) = (dir.join("train"), dir.join("test"));
    folder(&train, &[("anna", 0), ("boris", 1), ("chen", 2)], 8);
    folder(&test, &[("dara", 3), ("emeka", 4), ("femi", 5)], 6);
    (train, test)
}

fn config(dir: &Path, train: &Path, test: &Path) -> PathBuf {
    let text = format!(
        r#"output_root = "runs"

[data]
kind = "image_folder"
path = "{}"
test = "{}"

[data.preprocess]
channels = "rgb"
size = 32
resize = {{ kind = "shorter_side" }}
normalize = {{ kind = "imagenet" }}

[train]
seed = 0
epochs = 2
lr = 1e-3
validate_every = 0
eval_batch = 64

[train.augment]
max_shift = 1.0
max_rotation_deg = 5.0

[train.augment.photo]
crop_scale = [0.6, 1.0]
brightness = 0.2
contrast = 0.2
saturation = 0.2

[train.model]
kind = "convnet4"
width = 8
embedding_dim = 16

[train.loss]
kind = "triplet"
margin = 0.2

[train.miner]
kind = "batch-hard"

[train.sampler]
classes_per_batch = 3
samples_per_class = 4

[eval]
max_pairs = 10000
map_classes = 3
"#,
        train.display(),
        test.display()
    );
    let p = dir.join("photos.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn photo_folders_train_end_to_end_and_embed_with_the_cards_preprocessing() {
    let dir = tmp("e2e");
    let (train, test) = photo_sets(&dir);
    let cfg = config(&dir, &train, &test);
    let run = dir.join("run");
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["model.safetensors", "model.json", "metrics.json", "report.html"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["sample_shape"], serde_json::json!([3, 32, 32]));
    assert_eq!(card["preprocessing"]["kind"], "image");
    assert_eq!(card["preprocessing"]["channels"], "rgb");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert!(m["test"]["retrieval"]["map_at_r"].as_f64().unwrap().is_finite());
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("dara") || html.contains("emeka") || html.contains("femi"), "the report's legend names the test classes");
    check_gallery(&html);

    // `margin embed` prepares the test folder by the card, and writes the class names.
    let (e, l) = (dir.join("E.npy"), dir.join("L.txt"));
    let out = margin(&["embed", "--model", run.to_str().unwrap(), "--input", test.to_str().unwrap(), "--out", e.to_str().unwrap(), "--labels-out", l.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names = std::fs::read_to_string(&l).unwrap();
    assert_eq!(names.lines().count(), 18);
    assert_eq!(names.lines().next(), Some("dara"));
    // `margin eval` reads the names back; metrics.json's per-class figures carry them too.
    let out = margin(&["eval", "--embeddings", e.to_str().unwrap(), "--labels", l.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["n_query_classes"], 3);
    let per: Vec<&str> = m["test_by_class"]["per_class"].as_array().unwrap().iter().map(|c| c["class"].as_str().unwrap()).collect();
    assert_eq!(per, ["dara", "emeka", "femi"]);
    for p in m["test_by_class"]["confused_pairs"].as_array().unwrap() {
        assert!(p["classes"].as_array().unwrap().iter().all(|c| per.contains(&c.as_str().unwrap())), "{p}");
    }
    assert_eq!(m["train"]["lazy_loading"], true, "the training folder is decoded per batch");
    let out = margin(&["embed", "--model", run.to_str().unwrap(), "--input", test.to_str().unwrap(), "--out", e.to_str().unwrap(), "--labels-out", dir.join("L.npy").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(".txt"), "{err}");
}

/// Test-time augmentation travels with the model: a run trained with `[eval] tta` records it
/// in its card, and `margin embed` of the test folder then gives the embeddings the run
/// evaluated — `margin eval` on them reproduces metrics.json's test figures, the
/// verification thresholds (distances, which move with every embedding) included.
#[test]
fn embed_averages_the_views_the_card_records() {
    let dir = tmp("tta");
    let (train, test) = photo_sets(&dir);
    let text = std::fs::read_to_string(config(&dir, &train, &test)).unwrap().replace("[eval]\n", "[eval]\ntta = { kind = \"shifts\", pixels = 1 }\n");
    let cfg = dir.join("photos-tta.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", run.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["tta"], serde_json::json!({"kind": "shifts", "pixels": 1}));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    let (e, l) = (dir.join("E.npy"), dir.join("L.txt"));
    let out = margin(&["embed", "--model", run.to_str().unwrap(), "--input", test.to_str().unwrap(), "--out", e.to_str().unwrap(), "--labels-out", l.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = margin(&["eval", "--embeddings", e.to_str().unwrap(), "--labels", l.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = |a: &serde_json::Value, b: &serde_json::Value, what: &str| {
        let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() <= 1e-5, "{what}: margin embed + eval {a} vs the run's evaluation {b}");
    };
    close(&r["retrieval"]["map_at_r"], &m["test"]["retrieval"]["map_at_r"], "MAP@R");
    for k in ["eer_threshold", "best_threshold", "auc"] {
        close(&r["verification"]["metrics"][k], &m["test"]["verification"]["metrics"][k], k);
    }
}

#[test]
fn a_class_in_both_photo_folders_is_refused_by_name() {
    let dir = tmp("leak");
    let (train, test) = (dir.join("train"), dir.join("test"));
    folder(&train, &[("anna", 0), ("boris", 1)], 4);
    folder(&test, &[("boris", 1), ("chen", 2)], 4);
    let cfg = config(&dir, &train, &test);
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("data leakage") && err.contains("\"boris\""), "{err}");
}

#[test]
fn a_grey_model_refuses_colour_input_naming_the_field() {
    let dir = tmp("grey");
    let (train, test) = (dir.join("train"), dir.join("test"));
    folder(&train, &[("anna", 0), ("boris", 1)], 4);
    folder(&test, &[("chen", 2), ("dara", 3)], 4);
    let cfg = config(&dir, &train, &test);
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("channels = \"rgb\"", "channels = \"grey\"").replace("normalize = { kind = \"imagenet\" }\n", "")).unwrap();
    let out = margin(&["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("preprocessing.channels") && err.contains("img00.jpg"), "{err}");
}

/// The neighbour gallery: 10 seeded queries (18 test items), 5 neighbours each, every
/// border green exactly when the neighbour's class name is the query's, thumbnails valid
/// PNGs of at most 64 px a side; the confused-pairs table is there.
fn check_gallery(html: &str) {
    use base64::Engine;
    let caption = |fig: &str| fig.split("<figcaption>").nth(1).unwrap().split("</figcaption>").next().unwrap().split(" · ").next().unwrap().to_string();
    let rows: Vec<&str> = html.split(r#"<div class="row">"#).skip(1).map(|r| r.split("</div>").next().unwrap()).collect();
    assert_eq!(rows.len(), 10, "ten sample queries");
    let (mut same, mut diff) = (0, 0);
    for r in &rows {
        let figs: Vec<&str> = r.split(r#"<figure class="nb "#).skip(1).collect();
        assert_eq!(figs.len(), 6, "a query and its 5 neighbours: {r}");
        assert!(figs[0].starts_with("query"));
        let q = caption(figs[0]);
        for f in &figs[1..] {
            let green = f.starts_with("same");
            assert!(green || f.starts_with("diff"), "{f}");
            assert_eq!(green, caption(f) == q, "border colour matches the class names: {f}");
            if green { same += 1 } else { diff += 1 }
        }
    }
    assert_eq!(same + diff, 50);
    assert!(html.contains(".nb.same img") && html.contains(".nb.diff img"), "both border colours styled");
    let uri = html.split(r#"<img src="data:image/png;base64,"#).nth(1).expect("an inline PNG thumbnail").split('"').next().unwrap();
    let png = base64::engine::general_purpose::STANDARD.decode(uri).expect("valid base64");
    let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).expect("a valid PNG");
    assert!(img.width() <= 64 && img.height() <= 64 && img.width() > 0);
    assert!(html.contains("Most confused class pairs"));
}

/// `margin train` with the bundled ResNet configuration (configs/photos_resnet.toml, made
/// small: 32² pictures, 3 classes a batch) and the flags a user gives it: the data and test
/// folders, the pretrained weights (the golden torchvision ResNet-18), epochs, batches and
/// the run folder. The stored configuration has the overridden fields, the card is a
/// ResNet's, the evaluation names the test classes. `--weights` with a ConvNet
/// configuration is refused, naming the model kind.
#[test]
fn a_resnet_trains_on_photo_folders_from_the_cli_with_override_flags() {
    let dir = tmp("resnet");
    let (train, test) = (dir.join("train"), dir.join("test"));
    folder(&train, &[("anna", 0), ("boris", 1), ("chen", 2)], 4);
    folder(&test, &[("dara", 3), ("emeka", 4), ("femi", 5)], 3);
    let bundled = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/photos_resnet.toml")).unwrap();
    let small = bundled.replace("size = 224", "size = 32").replace("classes_per_batch = 8", "classes_per_batch = 3").replace("samples_per_class = 4", "samples_per_class = 2");
    assert_ne!(small, bundled);
    let cfg = dir.join("photos_resnet.toml");
    std::fs::write(&cfg, small).unwrap();
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/resnet18/resnet18.pth");
    let run = dir.join("run");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = margin(&[
        "train", "--config", &s(&cfg), "--data", &s(&train), "--test", &s(&test), "--weights", &s(&weights),
        "--epochs", "1", "--batches-per-epoch", "2", "--out", &s(&run), "-q",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for want in [s(&train), s(&test), s(&weights)] {
        assert!(stored.contains(&want), "config.toml records {want}:\n{stored}");
    }
    let card: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("model.json")).unwrap()).unwrap();
    assert_eq!((card["model"]["kind"].as_str(), card["model"]["depth"].as_u64()), (Some("resnet"), Some(18)), "{card}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!((m["train"]["epochs"].as_u64(), m["train"]["steps"].as_u64()), (Some(1), Some(2)));
    assert_eq!(m["test_by_class"]["per_class"][0]["class"], "dara");

    let convnet = config(&dir, &train, &test);
    let out = margin(&["train", "--config", &s(&convnet), "--weights", &s(&weights), "--out", &s(&dir.join("run2")), "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--weights") && err.contains("convnet4"), "{err}");
}
