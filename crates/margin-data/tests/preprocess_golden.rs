//! torchvision's standard eval preprocessing (`Resize(256)` → `CenterCrop(224)` →
//! `ToTensor` → `Normalize(ImageNet)`, on Pillow's picture) against
//! `ImagePreprocess::imagenet_eval` on `../shared/golden/images`: close, not equal —
//! Pillow resamples in 8-bit fixed point and rounds between its two passes, margin in
//! floats. After normalisation one 8-bit level is 1/255/0.224 ≈ 0.0176: on lossless files
//! every value is within one level (Pillow's rounding; measured max 0.0164), on JPEG mean
//! |diff| ≤ 0.01 and max ≤ 0.06 (the decoders' own differences on top; measured mean
//! ≤ 0.0061, max 0.053).

use std::path::{Path, PathBuf};

use margin_data::decode::decode;
use margin_data::npy::read_npy;
use margin_data::preprocess::ImagePreprocess;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/images")
}

#[test]
fn imagenet_eval_preprocessing_agrees_with_torchvision() {
    let text = std::fs::read_to_string(golden().join("cases.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let prep = ImagePreprocess::imagenet_eval();
    let mut checked = 0;
    for c in cases.iter().filter(|c| c.get("pre224").is_some()) {
        let file = c["file"].as_str().unwrap();
        let d = decode(&std::fs::read(golden().join(file)).unwrap(), file).unwrap();
        let want = read_npy(&golden().join(c["pre224"].as_str().unwrap())).unwrap();
        assert_eq!(want.header.shape, vec![3, 224, 224]);
        let want = want.to_f32();
        let mut got = vec![0f32; 3 * 224 * 224];
        prep.apply(&d, file, &mut got).unwrap();
        let diffs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        let max = diffs.iter().copied().fold(0f32, f32::max);
        eprintln!("{file}: mean |diff| {mean:.4}, max {max:.4}");
        let ok = if file.ends_with(".jpg") { mean <= 0.01 && max <= 0.06 } else { max <= 1.0 / 255.0 / 0.224 };
        assert!(ok, "{file}: mean |diff| {mean}, max {max} against torchvision");
        checked += 1;
    }
    assert_eq!(checked, 16);
}
