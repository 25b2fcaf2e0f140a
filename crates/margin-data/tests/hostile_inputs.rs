//! Issue 11, "Nothing silent, nothing lost": the bad inputs a tester found in margin-data's
//! readers, each refused with a message naming the input (they panicked, aborted or lost
//! data before), and the image-folder layout rule shared by folders and zips.

use std::io::Write;
use std::path::{Path, PathBuf};

use margin_data::{DataSpec, RunConfig, SplitSpec, load_data, load_image_folder, npy};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn npy_bytes(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    h.push_str(&" ".repeat(63 - (10 + h.len()) % 64));
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(payload);
    b
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated)).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.write_header().unwrap().write_image_data(&vec![v; (w * h) as usize]).unwrap();
    out
}

/// A 200-byte `.npy` whose header says (10¹², 8) aborted with "memory allocation failed";
/// now refused before allocating, naming both sizes.
#[test]
fn npy_header_larger_than_the_file_is_refused() {
    let b = npy_bytes("<f8", "(1000000000000, 8)", &[0; 64]);
    let e = npy::from_bytes(&b, "big.npy").unwrap_err().to_string();
    assert!(e.contains("big.npy") && e.contains("64000000000000 bytes") && e.contains("only 64 bytes follow"), "{e}");
    // The same through a file and through an .npz member.
    let d = tmp("npy");
    std::fs::write(d.join("big.npy"), &b).unwrap();
    let e = npy::read_npy(&d.join("big.npy")).unwrap_err().to_string();
    assert!(e.contains("only 64 bytes follow"), "{e}");
    let mut z = npy::Npz::from_bytes(zip_of(&[("x.npy", &b)]), "f.npz").unwrap();
    let e = z.read("x").unwrap_err().to_string();
    assert!(e.contains("f.npz:x.npy") && e.contains("only 64 bytes follow"), "{e}");
    // A shape whose product overflows.
    let b = npy_bytes("<f8", "(4294967296, 4294967296, 2)", &[]);
    let e = npy::from_bytes(&b, "wrap.npy").unwrap_err().to_string();
    assert!(e.contains("more elements than this machine can address"), "{e}");
}

/// A zip member is never read past the size it declares, and a member declaring more
/// than deflate can produce from its compressed bytes is refused.
#[test]
fn zip_members_declaring_too_much_are_refused() {
    let mut z = zip_of(&[("x.npy", &npy_bytes("<f4", "(2,)", &[0; 8]))]);
    // Forge the central directory's uncompressed size (offset 24 of its record) to 2 GB.
    let cd = z.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    z[cd + 24..cd + 28].copy_from_slice(&2_000_000_000u32.to_le_bytes());
    let e = npy::Npz::from_bytes(z, "bomb.npz").and_then(|mut n| n.read("x")).unwrap_err().to_string();
    assert!(e.contains("bomb.npz") && e.contains("2000000000") && e.contains("more than the data can hold"), "{e}");
    // A real bomb: 64 MiB of zeros in a few KB is refused by the npy header's own size
    // check (the header declares 8 bytes; the member ends there, unread beyond).
    let mut payload = vec![0u8; 8];
    payload.extend(std::iter::repeat_n(0u8, 64 << 20));
    let z = zip_of(&[("x.npy", &npy_bytes("<f4", "(2,)", &payload))]);
    assert!(z.len() < 200_000, "{}", z.len());
    let a = npy::Npz::from_bytes(z, "bomb.npz").unwrap().read("x").unwrap();
    assert_eq!(a.header.shape, vec![2]);
}

#[test]
fn zero_row_features_say_no_data_rows() {
    let d = tmp("zero");
    let x = npy_bytes("<f4", "(0, 4)", &[]);
    let y = npy_bytes("<i8", "(0,)", &[]);
    std::fs::write(d.join("f.npz"), zip_of(&[("x.npy", &x), ("y.npy", &y)])).unwrap();
    let spec = DataSpec::Features { path: d.join("f.npz"), labels: None, test: None, test_labels: None };
    let e = load_data(&spec, &SplitSpec::default(), 0).err().unwrap().to_string();
    assert!(e.contains("f.npz") && e.contains("no data rows"), "{e}");
    std::fs::write(d.join("h.csv"), "a,b,label\n").unwrap();
    let spec = DataSpec::Csv { path: d.join("h.csv"), label_column: -1, delimiter: ",".into(), quoting: true, header: Default::default(), test: None, scale: 1.0 };
    let e = load_data(&spec, &SplitSpec::default(), 0).err().unwrap().to_string();
    assert!(e.contains("h.csv") && e.contains("no data rows"), "{e}");
}

/// A separate test set of another dimension panicked later inside Burn's Linear.
#[test]
fn train_and_test_of_different_shapes_are_refused() {
    let d = tmp("shapes");
    let rows = |dim: usize| -> String { (0..6).map(|i| format!("{}{}\n", "1,".repeat(dim), i % 3)).collect() };
    std::fs::write(d.join("train.csv"), rows(3)).unwrap();
    std::fs::write(d.join("test.csv"), rows(4).replace(",0\n", ",10\n").replace(",1\n", ",11\n").replace(",2\n", ",12\n")).unwrap();
    let spec = DataSpec::Csv {
        path: d.join("train.csv"),
        label_column: -1,
        delimiter: ",".into(),
        quoting: true,
        header: Default::default(),
        test: Some(d.join("test.csv")),
        scale: 1.0,
    };
    let e = load_data(&spec, &SplitSpec::default(), 0).err().unwrap().to_string();
    assert!(e.contains("train.csv") && e.contains("test.csv") && e.contains("[3]") && e.contains("[4]"), "{e}");
}

#[test]
fn image_size_above_the_cap_names_the_field() {
    let spec = DataSpec::ImageFolder { path: "/nonexistent".into(), test: None, image_size: 100_000, invert: false, preprocess: None, skip_bad: false };
    let e = load_data(&spec, &SplitSpec::default(), 0).err().unwrap().to_string();
    assert!(e.contains("data.image_size = 100000"), "{e}");
    let e = RunConfig::<toml::Table>::from_toml("[data]\nkind = \"omniglot\"\ndir = \"x\"\nimage_size = 0\n[train]\n", "c.toml").unwrap_err().to_string();
    assert!(e.contains("data.image_size = 0"), "{e}");
}

#[test]
fn csv_options_in_the_run_config() {
    let c = RunConfig::<toml::Table>::from_toml(
        "[data]\nkind = \"csv\"\npath = \"x.tsv\"\ndelimiter = \"\\t\"\nquoting = false\nheader = true\n[train]\nepochs = 1\n",
        "c.toml",
    )
    .unwrap();
    let o = c.data.csv_options().unwrap().unwrap();
    assert_eq!((o.delimiter, o.quoting, o.header), (b'\t', false, margin_data::CsvHeader::Yes));
    let e = RunConfig::<toml::Table>::from_toml("[data]\nkind = \"csv\"\npath = \"x\"\nheader = \"maybe\"\n[train]\n", "c.toml").unwrap_err().to_string();
    assert!(e.contains("c.toml") && e.contains("maybe"), "{e}");
    let e = RunConfig::<toml::Table>::from_toml("[data]\nkind = \"csv\"\npath = \"x\"\ndelimiter = \";;\"\n[train]\n", "c.toml").unwrap_err().to_string();
    assert!(e.contains("data.delimiter"), "{e}");
}

/// The tree written as a folder.
fn write_tree(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (rel, bytes) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Images in sub-folders of a class folder were dropped from folders but loaded from the
/// same tree zipped. One rule now (the class is the image's folder below the root), and
/// a folder, its zip and its `NAME.zip` with a `NAME/` top folder give the same dataset.
#[test]
fn folders_and_zips_nest_the_same_way() {
    let d = tmp("tree");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("cat/a.png", png(4, 4, 0)),
        ("cat/deeper/b.png", png(4, 4, 255)),
        ("dog/c.png", png(2, 2, 128)),
        ("Latin/character01/d.png", png(3, 3, 10)),
        ("Greek/character01/e.png", png(3, 3, 20)),
        ("dog/notes.txt", b"not an image".to_vec()),
        (".hidden/x.png", b"skipped".to_vec()),
        ("dog/__MACOSX/._c.png", b"skipped".to_vec()),
    ];
    let root = d.join("set");
    write_tree(&root, &files);
    let (folder, names) = load_image_folder(&root, 4, false).unwrap();
    assert_eq!(names, vec!["Greek/character01", "Latin/character01", "cat", "cat/deeper", "dog"]);
    assert_eq!(folder.len(), 5, "every image beneath the root is loaded");
    let entries: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    std::fs::write(d.join("flat.zip"), zip_of(&entries)).unwrap();
    let prefixed: Vec<(String, &[u8])> = files.iter().map(|(n, b)| (format!("set/{n}"), b.as_slice())).collect();
    let prefixed: Vec<(&str, &[u8])> = prefixed.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    std::fs::write(d.join("set.zip"), zip_of(&prefixed)).unwrap();
    for z in ["flat.zip", "set.zip"] {
        let (zipped, znames) = load_image_folder(&d.join(z), 4, false).unwrap();
        assert_eq!(znames, names, "{z}");
        assert_eq!((&zipped.features, &zipped.labels), (&folder.features, &folder.labels), "{z}");
    }
    // An image with no class folder is refused, naming it, in both layouts.
    write_tree(&root, &[("stray.png", png(2, 2, 0))]);
    let e = load_image_folder(&root, 4, false).unwrap_err().to_string();
    assert!(e.contains("stray.png") && e.contains("class folder"), "{e}");
    std::fs::write(d.join("stray.zip"), zip_of(&[("stray.png", &png(2, 2, 0))])).unwrap();
    let e = load_image_folder(&d.join("stray.zip"), 4, false).unwrap_err().to_string();
    assert!(e.contains("stray.png") && e.contains("class folder"), "{e}");
}

/// Omniglot's alphabet/character zip (shared data) still gives one class per character.
#[test]
fn omniglot_small_zip_classes_are_characters() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/omniglot/images_background_small1.zip");
    if !p.exists() {
        panic!("missing shared test data {}", p.display());
    }
    let (d, names) = load_image_folder(&p, 28, true).unwrap();
    assert!(names.iter().all(|n| n.split('/').count() == 2), "{:?}", &names[..3]);
    assert_eq!(d.len(), names.len() * 20, "20 drawers per character");
}
