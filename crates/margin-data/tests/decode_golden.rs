//! Decoding parity with Pillow 13 on `../shared/golden/images/` (19 encodings of synthetic
//! pictures, made by `../shared/golden/make_image_golden.py`): `Decoded::rgb8` equals
//! Pillow's `exif_transpose` + `convert("RGB")` byte for byte on every lossless format and
//! within about one grey level on JPEG (mean |diff| ≤ 1, max ≤ 20: IDCTs and chroma
//! upsampling differ; measured: mean ≤ 0.26, max 16 on `tall.jpg`'s sharp colour edges); the shape after EXIF orientation is Pillow's; the three broken
//! files are errors naming the file. The torchvision eval preprocessing of the same
//! pictures is compared in `preprocess_golden.rs`.

use std::path::{Path, PathBuf};

use margin_data::decode::decode;
use margin_data::npy::{NpyData, read_npy};

pub fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/images")
}

pub fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(golden().join("cases.json")).expect("../shared/golden/images/cases.json is readable");
    serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap()
}

fn pillow_rgb(name: &str) -> (Vec<usize>, Vec<u8>) {
    let a = read_npy(&golden().join(name)).unwrap();
    let v = match &a.data {
        NpyData::Int(v) => v.iter().map(|&x| u8::try_from(x).unwrap()).collect(),
        other => panic!("{name}: not uint8: {other:?}"),
    };
    (a.header.shape.clone(), v)
}

#[test]
fn decoding_agrees_with_pillow() {
    let cases = cases();
    assert_eq!(cases.len(), 19, "the fixture lists 19 files");
    let mut checked = 0;
    for c in cases.iter().filter(|c| c.get("rgb").is_some()) {
        let file = c["file"].as_str().unwrap();
        let bytes = std::fs::read(golden().join(file)).unwrap();
        let d = decode(&bytes, file).unwrap_or_else(|e| panic!("{e}"));
        let (shape, want) = pillow_rgb(c["rgb"].as_str().unwrap());
        assert_eq!(vec![d.height(), d.width(), 3], shape, "{file}: shape (EXIF orientation applied)");
        let got = d.rgb8();
        let diffs: Vec<u32> = got.iter().zip(&want).map(|(a, b)| u32::from(a.abs_diff(*b))).collect();
        let max = diffs.iter().copied().max().unwrap();
        let mean = diffs.iter().sum::<u32>() as f64 / diffs.len() as f64;
        if file.ends_with(".jpg") {
            assert!(mean <= 1.0 && max <= 20, "{file}: mean |diff| {mean:.3}, max {max} against Pillow");
        } else {
            assert_eq!(max, 0, "{file}: lossless decode differs from Pillow (mean {mean:.4})");
        }
        eprintln!("{file}: mean |diff| {mean:.3}, max {max}");
        checked += 1;
    }
    assert_eq!(checked, 16);
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let broken: Vec<_> = cases().into_iter().filter(|c| c.get("rgb").is_none()).collect();
    assert_eq!(broken.len(), 3);
    for c in broken {
        let file = c["file"].as_str().unwrap();
        let bytes = std::fs::read(golden().join(file)).unwrap();
        let e = decode(&bytes, file).unwrap_err().to_string();
        assert!(e.contains(file), "{e}");
        eprintln!("{e}");
    }
}
