//! Classes are names (issue 12): a training folder plus a separate test folder, each
//! numbering its own classes from 0, loads and passes the leakage check when their names
//! are disjoint; a name in both is refused, naming it; explicit split lists name classes.

use std::path::{Path, PathBuf};

use margin_data::{ClassRef, DataSpec, SplitSpec, load_data};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-classnames-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `root/<class>/<k>.jpg`: small RGB JPEGs, two per class.
fn folder(root: &Path, classes: &[&str]) {
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..2u8 {
            let img = image::RgbImage::from_fn(20, 16, |x, y| image::Rgb([(x * 12) as u8, (y * 15) as u8, 40 * c as u8 + k]));
            img.save(dir.join(format!("{k}.jpg"))).unwrap();
        }
    }
}

fn spec(train: &Path, test: &Path) -> DataSpec {
    DataSpec::ImageFolder { path: train.into(), test: Some(test.into()), image_size: 16, invert: false, preprocess: None, skip_bad: false }
}

#[test]
fn separate_train_and_test_folders_are_compared_by_name() {
    let d = tmp("sep");
    folder(&d.join("train"), &["ann", "bob", "cy"]);
    folder(&d.join("test"), &["dee", "eve"]);
    let l = load_data(&spec(&d.join("train"), &d.join("test")), &SplitSpec::default(), 0).unwrap();
    assert_eq!(l.train.present_class_names().into_iter().collect::<Vec<_>>(), ["ann", "bob", "cy"]);
    let test = l.test.unwrap();
    assert_eq!(test.present_class_names().into_iter().collect::<Vec<_>>(), ["dee", "eve"]);
    assert_eq!(test.label_names(), ["dee", "dee", "eve", "eve"]);
    // Both folders number their classes from 0: the indices overlap, the names do not.
    assert_eq!(test.labels[0], l.train.labels[0]);
}

#[test]
fn a_class_in_both_folders_is_refused_by_name() {
    let d = tmp("overlap");
    folder(&d.join("train"), &["ann", "bob", "cy"]);
    folder(&d.join("test"), &["bob", "eve"]);
    let e = load_data(&spec(&d.join("train"), &d.join("test")), &SplitSpec::default(), 0).err().expect("leakage").to_string();
    assert!(e.contains("data leakage") && e.contains("1 class(es)") && e.contains("\"bob\""), "{e}");
}

#[test]
fn explicit_split_lists_name_classes() {
    let d = tmp("split");
    folder(&d.join("train"), &["ann", "bob", "cy", "dee"]);
    let data = DataSpec::ImageFolder { path: d.join("train"), test: None, image_size: 16, invert: false, preprocess: None, skip_bad: false };
    let names = |v: &[&str]| Some(v.iter().map(|s| ClassRef::Name(s.to_string())).collect());
    let sp = SplitSpec { train_classes: names(&["ann", "bob"]), test_classes: names(&["dee"]), ..Default::default() };
    let l = load_data(&data, &sp, 0).unwrap();
    assert_eq!(l.train.present_class_names().into_iter().collect::<Vec<_>>(), ["ann", "bob"]);
    assert_eq!(l.test.unwrap().present_class_names().into_iter().collect::<Vec<_>>(), ["dee"]);
    let sp = SplitSpec { train_classes: names(&["ann", "zed"]), ..Default::default() };
    let e = load_data(&data, &sp, 0).err().expect("unknown class").to_string();
    assert!(e.contains("split.train_classes") && e.contains("\"zed\""), "{e}");
    // Integers name classes by their decimal form: a folder called "0" is class 0.
    let sp = SplitSpec { train_classes: Some(vec![ClassRef::Number(0)]), ..Default::default() };
    let e = load_data(&data, &sp, 0).err().expect("no class 0").to_string();
    assert!(e.contains("\"0\""), "{e}");
}

/// `skip_bad` (off by default): a broken image stops the load naming the file; with it on,
/// the image is left out and reported with the same error.
#[test]
fn skip_bad_leaves_out_and_reports_broken_images() {
    let d = tmp("skip");
    folder(&d.join("train"), &["ann", "bob", "cy"]);
    std::fs::write(d.join("train/bob/broken.jpg"), b"\xff\xd8\xff\xe0 cut short").unwrap();
    let spec = |skip_bad| DataSpec::ImageFolder { path: d.join("train"), test: None, image_size: 16, invert: false, preprocess: None, skip_bad };
    let sp = SplitSpec { test_fraction: 0.34, ..Default::default() };
    let e = load_data(&spec(false), &sp, 0).err().expect("a bad image").to_string();
    assert!(e.contains("broken.jpg"), "{e}");
    let l = load_data(&spec(true), &sp, 0).unwrap();
    assert_eq!(l.skipped.len(), 1);
    assert!(l.skipped[0].0.ends_with("bob/broken.jpg") && l.skipped[0].1.contains("broken.jpg"), "{:?}", l.skipped);
    assert_eq!(l.train.len() + l.test.map_or(0, |t| t.len()), 6);
}
