//! One dispatch from a fuzz target's name to the public entry point it exercises, shared
//! by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs` at the repository root, nightly
//! only) and the stable replay test (`tests/fuzz_replay.rs`, run by CI), so the two can
//! never drift apart.
//!
//! Every target feeds bytes to a reader of user files through the same function a file
//! path would reach ([`crate::npy::from_bytes`], [`crate::npy::Npz::from_bytes`],
//! [`crate::delimited::csv_from_bytes`], [`crate::images::decode_grey`] (over [`crate::decode::decode`]),
//! [`crate::image_folder::load_image_zip_bytes`], [`crate::ModelCard::from_bytes`],
//! [`crate::RunConfig::from_toml`]) and then checks what a successful read promises (no
//! NaN, shapes that add up). The contract under test: any input gives `Ok` or a
//! [`DataError`] — never a panic, an abort or an allocation beyond a small multiple of
//! the input ([`crate::limits`]).

use crate::{DataError, delimited, image_folder, images, npy};

/// A fuzz target: one parser of user files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `.npy` arrays.
    Npy,
    /// `.npz` archives (every entry read).
    Npz,
    /// CSV/TSV text (three option sets: defaults, TSV without quoting, no header).
    Csv,
    /// One image of any format [`crate::decode`] reads, decoded to grey and resized.
    Image,
    /// A zip of an image folder.
    ImageZip,
    /// The model card (`model.json`).
    Card,
    /// The run configuration (`config.toml`), training section as a raw table.
    Spec,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 7] = [Target::Npy, Target::Npz, Target::Csv, Target::Image, Target::ImageZip, Target::Card, Target::Spec];

    /// The target's name: its `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Npy => "npy",
            Target::Npz => "npz",
            Target::Csv => "csv",
            Target::Image => "image",
            Target::ImageZip => "image_zip",
            Target::Card => "card",
            Target::Spec => "spec",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

fn broken(what: &str, reason: String) -> DataError {
    DataError::Format { path: what.to_string(), reason }
}

/// Feeds `data` to `target`'s entry point: `Ok` or the reader's error. A panic here is a
/// bug (the fuzzers report it as a crash): while it runs, [`crate::limits::guarded`] lets
/// panics through instead of turning them into errors, so none is hidden.
pub fn run(target: Target, data: &[u8]) -> Result<(), DataError> {
    struct Strict(bool);
    impl Drop for Strict {
        fn drop(&mut self) {
            crate::limits::STRICT.with(|s| s.set(self.0));
        }
    }
    let _restore = Strict(crate::limits::STRICT.with(|s| s.replace(true)));
    dispatch(target, data)
}

fn dispatch(target: Target, data: &[u8]) -> Result<(), DataError> {
    match target {
        Target::Npy => {
            let a = npy::from_bytes(data, "fuzz.npy")?;
            check_array(&a)
        }
        Target::Npz => {
            let mut z = npy::Npz::from_bytes(data.to_vec(), "fuzz.npz")?;
            let mut first = Ok(());
            for name in z.names() {
                match z.read(&name) {
                    Ok(a) => check_array(&a)?,
                    Err(e) => first = first.and(Err(e)),
                }
            }
            first
        }
        Target::Csv => {
            let sets = [
                delimited::CsvOptions::default(),
                delimited::CsvOptions { delimiter: b'\t', quoting: false, ..Default::default() },
                delimited::CsvOptions { header: delimited::CsvHeader::No, label_column: 0, ..Default::default() },
            ];
            let mut last = Ok(());
            for o in &sets {
                last = delimited::csv_from_bytes(data, "fuzz.csv", o).map(|d| assert_eq!(d.features.len(), d.len() * d.dim()));
            }
            last
        }
        Target::Image => {
            let (g, h, w) = images::decode_grey(data, "fuzz.img")?;
            if g.len() != h * w || g.iter().any(|v| !(0.0..=1.0).contains(v)) {
                return Err(broken("fuzz.img", "decoded grey levels outside [0, 1] or of the wrong count".into()));
            }
            let mut dst = vec![0f32; 8 * 8];
            images::area_resize(&g, h, w, &mut dst, 8, 8);
            assert!(dst.iter().all(|v| v.is_finite()), "area_resize made a non-finite value");
            Ok(())
        }
        Target::ImageZip => {
            let (d, names) = image_folder::load_image_zip_bytes(data.to_vec(), "fuzz.zip", 8, false)?;
            assert_eq!(d.classes().len(), names.len());
            Ok(())
        }
        Target::Card => {
            let c = crate::ModelCard::from_bytes(data, "model.json")?;
            let _ = c.model.validate(&c.sample_shape);
            Ok(())
        }
        Target::Spec => {
            let text = std::str::from_utf8(data).map_err(|e| broken("config.toml", format!("not UTF-8: {e}")))?;
            let cfg = crate::RunConfig::<toml::Table>::from_toml(text, "config.toml")?;
            cfg.data.csv_options()?;
            Ok(())
        }
    }
}

fn check_array(a: &npy::NpyArray) -> Result<(), DataError> {
    let n = match &a.data {
        npy::NpyData::F32(v) => v.len(),
        npy::NpyData::F64(v) => v.len(),
        npy::NpyData::Int(v) => v.len(),
    };
    assert_eq!(n, a.header.len(), "{}: element count differs from the header's shape", a.what);
    Ok(())
}
