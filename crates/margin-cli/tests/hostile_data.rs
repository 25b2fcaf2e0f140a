//! Issue 11 through the binary: data files that made `margin train` panic (inside Burn's
//! Linear, in `area_resize`) or keep wrong data now stop it with a message naming the file,
//! and no panic.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `margin train` on `digits.toml` with its `[data]` table replaced; returns stderr.
fn train_fails(dir: &Path, data: &str) -> String {
    let text = std::fs::read_to_string(repo().join("configs/digits.toml")).unwrap();
    let start = text.find("[data]").unwrap();
    let end = text.find("[split]").unwrap();
    let text = format!("{}{data}\n\n[split]\n{}", &text[..start], &text[end + "[split]".len()..]).replace(
        "train_classes = [0, 1, 2, 3, 4]\ntest_classes = [5, 6, 7, 8, 9]",
        "",
    );
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_margin"))
        .args(["train", "--config", cfg.to_str().unwrap(), "--out", dir.join("run").to_str().unwrap(), "-q"])
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_data_stops_margin_train_with_a_message() {
    let dir = std::env::temp_dir().join(format!("margin-hostile-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows = |dim: usize, first: usize| -> String { (0..12).map(|i| format!("{}{}\n", "0.5,".repeat(dim), first + i % 4)).collect() };
    std::fs::write(dir.join("train.csv"), rows(3, 0)).unwrap();
    std::fs::write(dir.join("test.csv"), rows(4, 10)).unwrap();
    let err = train_fails(&dir, &format!("[data]\nkind = \"csv\"\npath = \"{}\"\ntest = \"{}\"", dir.join("train.csv").display(), dir.join("test.csv").display()));
    assert!(err.contains("train.csv") && err.contains("test.csv") && err.contains("[3]") && err.contains("[4]"), "{err}");

    std::fs::write(dir.join("labels.csv"), "1,2,0\n1,2,1e300\n").unwrap();
    let err = train_fails(&dir, &format!("[data]\nkind = \"csv\"\npath = \"{}\"", dir.join("labels.csv").display()));
    assert!(err.contains("labels.csv") && err.contains("line 2, column 3"), "{err}");

    let img = dir.join("images/cat");
    std::fs::create_dir_all(&img).unwrap();
    std::fs::write(img.join("big.pgm"), b"P5 4294967296 4294967296 255\n\x00").unwrap();
    let err = train_fails(&dir, &format!("[data]\nkind = \"image_folder\"\npath = \"{}\"", dir.join("images").display()));
    // A side beyond u32 is refused by the PNM decoder's header parser (naming the file).
    assert!(err.contains("big.pgm") && err.contains("corrupt or unsupported PNM"), "{err}");

    let err = train_fails(&dir, &format!("[data]\nkind = \"image_folder\"\npath = \"{}\"\nimage_size = 100000", dir.join("images").display()));
    assert!(err.contains("data.image_size = 100000"), "{err}");
}
