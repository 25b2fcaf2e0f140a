//! `margin embed --backbone resnet18 --weights FILE.pth --input X.npy --out F.npy` writes
//! torchvision's pooled features (the golden `../shared/golden/resnet18` outputs), raw.

use std::path::Path;
use std::process::Command;

#[test]
fn embed_backbone_writes_torchvision_features() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/resnet18");
    let out = std::env::temp_dir().join(format!("margin-embed-backbone-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let f = out.join("F.npy");
    let run = Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["embed", "--backbone", "resnet18", "--weights"])
        .arg(golden.join("resnet18.pth"))
        .arg("--input")
        .arg(golden.join("inputs112.npy"))
        .arg("--out")
        .arg(&f)
        .args(["--batch", "1"])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ours = margin_data::npy::read_npy(&f).unwrap();
    let gold = margin_data::npy::read_npy(&golden.join("features112.npy")).unwrap();
    assert_eq!(ours.header.shape, vec![2, 512]);
    let (a, b) = (ours.to_f32(), gold.to_f32());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale;
    assert!(d < 1e-4, "max relative difference {d:e}");
    std::fs::remove_dir_all(out).unwrap();
}
