//! # margin-data — margin's inputs, without Burn
//!
//! Datasets and their loaders (Omniglot `.npz`, feature `.npy`/`.npz`, CSV, image
//! folders and zips), class-disjoint splits and the leakage check, the Omniglot one-shot
//! runs ([`omniglot`]), the run configuration's data/split/eval sections ([`spec`]), the
//! model card ([`card`]) and arrays prepared by it as a model's samples
//! ([`array_samples`]) — everything a Burn-free program (search, Python) needs to read
//! margin's files.
//!
//! Why these dependencies: `zip` + `flate2` (pure-Rust deflate) read image-folder zips,
//! `.npz` archives and Omniglot's `all_runs.zip`; `image` (the Rust ecosystem's maintained
//! decoder collection, pure Rust, fuzzed upstream) decodes photos — only the features for
//! the formats photos and scans come in: `jpeg` (zune-jpeg: baseline, progressive, grey,
//! CMYK), `png`, `webp`, `bmp`, `tiff`, `pnm` (PGM/PPM, what the earlier hand-written
//! reader took); no GIF/AVIF/EXR/ICO/TGA (animation, HDR and icon formats are not training
//! photos, and AVIF would pull in a C/asm codec), no `rayon` feature (margin decodes many
//! images on its own threads rather than one image on many); `csv` (BurntSushi's,
//! the Rust ecosystem's standard RFC 4180 reader, fuzzed upstream) parses CSV/TSV with
//! quoting and escapes instead of hand-written splitting; `serde` + `serde_json` are the
//! card format and `toml` (the same crate margin-train and the CLI use) the run
//! configuration's, so Burn-free readers parse `config.toml` too; `margin-eval` supplies
//! the one-shot run type its scorer takes.
//!
//! Untrusted input: every reader checks sizes from headers before allocating
//! ([`limits`]), runs third-party decoders behind `catch_unwind` ([`limits::guarded`]),
//! and has an entry point taking bytes, which the fuzz targets (`fuzz/` at the
//! repository root) and the stable replay test call through [`fuzzing`].
//!
//! A [`Dataset`] is a host-side matrix of `f32` samples (each of shape
//! [`Dataset::sample_shape`], e.g. `[1, 28, 28]` for images or `[64]` for feature
//! vectors) with one class label per sample. **A class is its name**: a label is an
//! index into the dataset's class-name table ([`Dataset::classes`]: folder names,
//! manifest labels, or the decimal form of an integer label of a `.npy`/CSV file), two
//! datasets share a class when they share a *name* (what the leakage check compares), and
//! joining two datasets merges their tables by name ([`Dataset::concat`]). So a train
//! folder and a separate test folder, each listing its own classes, are compared by what
//! their classes are called, never by their positions in two unrelated numberings.
//!
//! ## Modules
//!
//! - the `Samples` trait (length, label, class name, sample id, decode on demand) and the
//!   in-memory `Dataset` (labels index its class-name table);
//! - `backbone`: the backbone configuration (ResNet depth, head, freezing);
//! - `array_samples`: an array prepared as a model's samples by its card, the one copy
//!   `margin embed` (`.npy`) and `margin.Model.embed` use;
//! - loaders (npz/npy/csv/image folder/zip/manifest); `decode`: image decoding by the `image`
//!   crate (JPEG/PNG/WebP/BMP/TIFF/PNM, EXIF orientation, Pillow's RGB); `preprocess`: the typed
//!   picture preprocessing;
//! - `lazy`: the lazy file index and prefetching loader (folders, zips, manifests, in the eager
//!   loaders' order); `lazy_load`: `load_data` with the training side left lazy;
//! - `label_file` (label files of class names), `npy` (the one `.npy` reader), `archive` (the one
//!   zip reader), `limits` (the size caps), `fuzzing` (the fuzz dispatch);
//! - class-disjoint splits and the leakage check (by class name); Omniglot and its one-shot runs;
//! - `text`: text datasets as `TextSet` (plain-text/JSONL items, labelled CSV/TSV/JSONL by column
//!   name, pair tables, CLINC150 with its out-of-scope sets apart, STS-B; the utterance leakage
//!   check of the closed-set protocol);
//! - `spec`: the run-config sections (`DataSpec`, `SplitSpec`, `EvalSpec`, `RunConfig<T>`);
//!   `card`: the model card (`ModelCard`, `ModelConfig`, `Preprocessing`); `thresholds`: the
//!   card's calibrated thresholds; `calibration`: the calibration share of the training classes;
//! - `reencode`: JPEG round trip of a prepared picture, for the dedup copies;
//! - `memory`: the up-front memory budget. What a run will still allocate (model and optimizer
//!   state, a batch's activations, the loss's matrices, a loss's class parameters — `C·K × d` with
//!   gradient and optimizer state — and its `B × C·K` similarities; the data loader its cache) is
//!   compared with `MemAvailable` / the cgroup limit (`MARGIN_MEMORY_LIMIT` overrides), and an
//!   impossible run is an error with the figures, not an allocator abort.
//!
//! Burn-free code (search, Python bindings) reads a run folder with this crate alone:
//! `RunConfig<T>` is generic over the training section (typed as `TrainConfig` in margin-train,
//! readable as a raw value elsewhere); the model card is fully typed. The file formats:
//! `docs/formats.md` at the repository root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use thiserror::Error;

pub mod atomic;
pub mod array_samples;
pub mod archive;
pub mod backbone;
pub mod calibration;
pub mod card;
pub mod decode;
pub mod delimited;
pub mod fuzzing;
pub mod image_folder;
pub mod label_file;
pub mod lazy;
pub mod lazy_load;
pub mod manifest;
pub mod thresholds;
pub mod tta;
pub mod images;
pub mod memory;
pub mod limits;
pub mod npy;
pub mod omniglot;
pub mod preprocess;
pub mod reencode;
mod samples;
pub mod spec;
pub mod text;

pub use atomic::write_atomic;
pub use backbone::{Freeze, HeadConfig, ResnetConfig, ResnetDepth};
pub use card::{ModelCard, ModelConfig};
pub use delimited::{CsvHeader, CsvOptions, load_csv, load_csv_with};
pub use image_folder::load_image_folder;
pub use images::area_resize;
pub use samples::Samples;
pub use spec::{ClassRef, DataSpec, EvalSpec, Loaded, RunConfig, SplitSpec, load_data};
pub use lazy_load::{LazyLoaded, load_data_lazy};

/// Why a dataset could not be loaded or split. Every variant names the file or input.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but its content is not what was expected.
    #[error("{path}: {reason}")]
    Format {
        /// The file (and entry, for archives).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A class appears on both sides of a split that must be class-disjoint.
    #[error(
        "data leakage: {count} class(es) appear in both {left} and {right} (e.g. {examples:?}); \
         metric-learning splits must be class-disjoint"
    )]
    Leakage {
        /// The first side (e.g. `"train"`).
        left: String,
        /// The second side (e.g. `"test"`).
        right: String,
        /// Number of shared classes.
        count: usize,
        /// A few shared class names.
        examples: Vec<String>,
    },
    /// A split or subset request that cannot be satisfied.
    #[error("invalid split: {0}")]
    Split(String),
    /// A configuration field with an unusable value.
    #[error("invalid configuration: {field} = {value}: {reason}")]
    Config {
        /// The field (e.g. `"model.embedding_dim"`).
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
    /// A content error in `path`.
    pub fn format(path: &Path, reason: impl Into<String>) -> Self {
        DataError::Format { path: path.display().to_string(), reason: reason.into() }
    }
}

/// Labelled samples held on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A name for messages (usually the source file).
    pub name: String,
    /// `len × prod(sample_shape)` values, row-major.
    pub features: Vec<f32>,
    /// Shape of one sample: `[d]` for vectors, `[c, h, w]` for images.
    pub sample_shape: Vec<usize>,
    /// One class label per sample: an index into [`Dataset::classes`].
    pub labels: Vec<i64>,
    /// The class-name table (distinct names; `labels` index it). It may hold classes with
    /// no sample here (a subset keeps its source's table).
    pub classes: Vec<String>,
}

impl Dataset {
    /// Builds a dataset of integer-labelled samples (a `.npy`/CSV label column, Omniglot's
    /// character numbers), checking sizes and finiteness. The integers are identities:
    /// the class table is their distinct values in increasing order, written in decimal
    /// (`7` is class `"7"`), and the labels become indices into it (order kept).
    pub fn new(name: impl Into<String>, features: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<i64>) -> Result<Self, DataError> {
        let distinct: Vec<i64> = labels.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let index: BTreeMap<i64, i64> = distinct.iter().enumerate().map(|(k, &y)| (y, k as i64)).collect();
        let labels = labels.iter().map(|y| index[y]).collect();
        let classes = distinct.iter().map(i64::to_string).collect();
        Self::with_names(name, features, sample_shape, labels, classes)
    }

    /// Builds a dataset whose `labels` index the class-name table `classes` (names
    /// distinct and non-empty), checking sizes and finiteness.
    pub fn with_names(name: impl Into<String>, features: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<i64>, classes: Vec<String>) -> Result<Self, DataError> {
        let name = name.into();
        let dim = sample_shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(0);
        if dim == 0 {
            return Err(DataError::Format { path: name, reason: format!("sample shape {sample_shape:?} is empty or too large") });
        }
        if Some(features.len()) != dim.checked_mul(labels.len()) {
            return Err(DataError::Format {
                path: name,
                reason: format!("{} values for {} labels of sample shape {sample_shape:?}", features.len(), labels.len()),
            });
        }
        if let Some(i) = features.iter().position(|v| !v.is_finite()) {
            return Err(DataError::Format { path: name, reason: format!("non-finite value {} in sample {}", features[i], i / dim) });
        }
        check_class_table(&name, &labels, &classes)?;
        Ok(Dataset { name, features, sample_shape, labels, classes })
    }

    /// The name of class `label` (an index into [`Dataset::classes`]).
    pub fn class_name(&self, label: i64) -> &str {
        usize::try_from(label).ok().and_then(|k| self.classes.get(k)).map_or("?", String::as_str)
    }

    /// The names of the classes that have samples here, sorted.
    pub fn present_class_names(&self) -> BTreeSet<&str> {
        self.classes().into_iter().map(|c| self.class_name(c)).collect()
    }

    /// Each sample's class name, in sample order (what label files a user sees carry).
    pub fn label_names(&self) -> Vec<&str> {
        self.labels.iter().map(|&y| self.class_name(y)).collect()
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// Divides every value by `scale` (the feature preprocessing of a CSV `scale` or a model
    /// card; 1: nothing to do). `field` names the setting in the error for a `scale` that is
    /// not finite and > 0 (it would turn every value into NaN or infinity).
    pub fn divide_features(&mut self, scale: f64, field: &'static str) -> Result<(), DataError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(DataError::Config { field, value: scale.to_string(), reason: "must be finite and > 0" });
        }
        if scale != 1.0 {
            let s = (1.0 / scale) as f32;
            self.features.iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }

    /// Sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.features[i * d..(i + 1) * d]
    }

    /// The distinct classes, sorted.
    pub fn classes(&self) -> Vec<i64> {
        self.labels.iter().copied().collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// The samples at `idx`, in that order.
    pub fn select(&self, idx: &[usize], name: impl Into<String>) -> Dataset {
        let d = self.dim();
        let mut features = Vec::with_capacity(idx.len() * d);
        for &i in idx {
            features.extend_from_slice(self.sample(i));
        }
        Dataset {
            name: name.into(),
            features,
            sample_shape: self.sample_shape.clone(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
        }
    }

    /// The samples whose class is in `classes`.
    pub fn with_classes(&self, classes: &[i64], name: impl Into<String>) -> Dataset {
        let set: BTreeSet<i64> = classes.iter().copied().collect();
        let idx: Vec<usize> = (0..self.len()).filter(|&i| set.contains(&self.labels[i])).collect();
        self.select(&idx, name)
    }

    /// Concatenates two datasets of the same sample shape. Their class tables are merged
    /// by name: a class named in both is one class; `other`'s new names are appended.
    pub fn concat(&self, other: &Dataset, name: impl Into<String>) -> Result<Dataset, DataError> {
        if self.sample_shape != other.sample_shape {
            return Err(DataError::Split(format!(
                "{} has sample shape {:?} but {} has {:?}",
                self.name, self.sample_shape, other.name, other.sample_shape
            )));
        }
        let mut d = self.clone();
        d.name = name.into();
        let mut index: BTreeMap<&str, i64> = self.classes.iter().enumerate().map(|(k, c)| (c.as_str(), k as i64)).collect();
        let mut remap = Vec::with_capacity(other.classes.len());
        for c in &other.classes {
            let k = *index.entry(c.as_str()).or_insert_with(|| {
                d.classes.push(c.clone());
                d.classes.len() as i64 - 1
            });
            remap.push(k);
        }
        d.features.extend_from_slice(&other.features);
        d.labels.extend(other.labels.iter().map(|&y| remap[y as usize]));
        Ok(d)
    }
}

/// Checks that every label indexes `classes` and that the names are distinct and non-empty.
fn check_class_table(what: &str, labels: &[i64], classes: &[String]) -> Result<(), DataError> {
    let bad = |reason: String| Err(DataError::Format { path: what.to_string(), reason });
    if let Some((i, y)) = labels.iter().enumerate().find(|(_, y)| usize::try_from(**y).map_or(true, |k| k >= classes.len())) {
        return bad(format!("sample {i} has label {y}, outside its table of {} class names", classes.len()));
    }
    let mut seen = BTreeSet::new();
    for c in classes {
        if c.is_empty() {
            return bad("a class has an empty name".into());
        }
        if !seen.insert(c.as_str()) {
            return bad(format!("class name {c:?} appears twice in the class table"));
        }
    }
    Ok(())
}

/// Refuses any class present in both `left` and `right`, comparing class **names** (the
/// datasets' own numberings are unrelated).
pub fn check_no_leakage(left_name: &str, left: &Dataset, right_name: &str, right: &Dataset) -> Result<(), DataError> {
    check_names_disjoint(left_name, &left.present_class_names(), right_name, &right.present_class_names())
}

/// [`check_no_leakage`] on two sets of class names.
pub fn check_names_disjoint(left_name: &str, left: &BTreeSet<&str>, right_name: &str, right: &BTreeSet<&str>) -> Result<(), DataError> {
    let shared: Vec<String> = left.intersection(right).map(|s| s.to_string()).collect();
    if shared.is_empty() {
        Ok(())
    } else {
        Err(DataError::Leakage { left: left_name.into(), right: right_name.into(), count: shared.len(), examples: shared.into_iter().take(5).collect() })
    }
}

/// Refuses any label present in both index lists (one class table: [`ClassSplit`]).
fn check_indices_disjoint(left_name: &str, left: &[i64], right_name: &str, right: &[i64]) -> Result<(), DataError> {
    let a: BTreeSet<i64> = left.iter().copied().collect();
    let shared: Vec<String> = right.iter().copied().collect::<BTreeSet<_>>().intersection(&a).map(|c| c.to_string()).collect();
    if shared.is_empty() {
        Ok(())
    } else {
        Err(DataError::Leakage { left: left_name.into(), right: right_name.into(), count: shared.len(), examples: shared.into_iter().take(5).collect() })
    }
}

/// Classes of a class-disjoint train / validation / test split.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassSplit {
    /// Training classes (labels: indices into the pool's class table).
    pub train: Vec<i64>,
    /// Validation classes (may be empty).
    pub val: Vec<i64>,
    /// Test classes (may be empty when the test set comes from elsewhere).
    pub test: Vec<i64>,
}

impl ClassSplit {
    /// A seeded random split of `classes` by fractions (`val + test < 1`).
    pub fn random(classes: &[i64], val_fraction: f64, test_fraction: f64, seed: u64) -> Result<Self, DataError> {
        let ok = |f: f64| (0.0..1.0).contains(&f);
        if !ok(val_fraction) || !ok(test_fraction) || val_fraction + test_fraction >= 1.0 {
            return Err(DataError::Split(format!(
                "val_fraction = {val_fraction} and test_fraction = {test_fraction} must be in [0, 1) and sum to < 1"
            )));
        }
        let mut c: Vec<i64> = classes.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        c.shuffle(&mut rng);
        let n = c.len();
        let n_val = (val_fraction * n as f64).round() as usize;
        let n_test = (test_fraction * n as f64).round() as usize;
        if n - n_val - n_test < 2 {
            return Err(DataError::Split(format!("only {} training classes out of {n} would remain", n - n_val - n_test)));
        }
        let mut val = c[..n_val].to_vec();
        let mut test = c[n_val..n_val + n_test].to_vec();
        let mut train = c[n_val + n_test..].to_vec();
        val.sort_unstable();
        test.sort_unstable();
        train.sort_unstable();
        Ok(ClassSplit { train, val, test })
    }

    /// Checks that the three sides are pairwise disjoint.
    pub fn check(&self) -> Result<(), DataError> {
        check_indices_disjoint("train", &self.train, "test", &self.test)?;
        check_indices_disjoint("train", &self.train, "validation", &self.val)?;
        check_indices_disjoint("validation", &self.val, "test", &self.test)
    }
}

/// The two halves of Omniglot with disjoint labels: background classes are
/// named `0`..`963`, evaluation classes `964`..`1622` (upstream character id − 1).
#[derive(Debug, Clone)]
pub struct Omniglot {
    /// images_background.npz (964 classes × 20).
    pub background: Dataset,
    /// images_evaluation.npz (659 classes × 20).
    pub evaluation: Dataset,
}

/// Reads one Omniglot `.npz` (`images` bool `(C, 20, 105, 105)`, True = background),
/// converting to ink ([`omniglot::ink`]) and area-downsampling to `size × size`.
/// Class `c` is named `label_offset + c` (decimal).
pub fn load_omniglot_npz(path: &Path, size: usize, label_offset: i64) -> Result<Dataset, DataError> {
    limits::check_target_size(size, "image size")?;
    let mut npz = npy::Npz::open(path)?;
    let mut features = Vec::new();
    let mut src = vec![0f32; 105 * 105];
    let mut dst = vec![0f32; size * size];
    let header = npz.stream_bytes("images", 105 * 105, |_, bytes| {
        // The one ink rule (omniglot::ink): a bool pixel is white paper (grey 1) or ink (0).
        for (s, &b) in src.iter_mut().zip(bytes) {
            *s = omniglot::ink(if b != 0 { 1.0 } else { 0.0 });
        }
        area_resize(&src, 105, 105, &mut dst, size, size);
        features.extend_from_slice(&dst);
    })?;
    if header.shape.len() != 4 || header.shape[2] != 105 || header.shape[3] != 105 {
        return Err(DataError::format(path, format!("images has shape {:?}, expected (classes, drawers, 105, 105)", header.shape)));
    }
    let (classes, drawers) = (header.shape[0], header.shape[1]);
    let labels = (0..classes).flat_map(|c| std::iter::repeat_n(label_offset + c as i64, drawers)).collect();
    Dataset::new(path.display().to_string(), features, vec![1, size, size], labels)
}

/// Loads both Omniglot halves from a folder holding `images_background.npz`
/// and `images_evaluation.npz`.
pub fn load_omniglot(dir: &Path, size: usize) -> Result<Omniglot, DataError> {
    Ok(Omniglot {
        background: load_omniglot_npz(&dir.join("images_background.npz"), size, 0)?,
        evaluation: load_omniglot_npz(&dir.join("images_evaluation.npz"), size, 964)?,
    })
}

/// Loads feature vectors from a `.npy` (needs `labels`) or `.npz` holding
/// `x`/`features`/`X` (2-D) and `y`/`labels`/`Y` (1-D integer) entries.
pub fn load_features(path: &Path, labels_path: Option<&Path>) -> Result<Dataset, DataError> {
    let is_npz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let (x, y, yname) = if is_npz {
        let mut npz = npy::Npz::open(path)?;
        let names = npz.names();
        let pick = |cands: &[&str]| cands.iter().find(|c| names.iter().any(|n| n == *c)).map(|c| c.to_string());
        let xn = pick(&["x", "features", "X", "embeddings"])
            .ok_or_else(|| DataError::format(path, format!("no x/features entry (entries: {names:?})")))?;
        let x = npz.read(&xn)?;
        let y = match labels_path {
            Some(lp) => npy::read_npy(lp)?,
            None => {
                let yn = pick(&["y", "labels", "Y"])
                    .ok_or_else(|| DataError::format(path, format!("no y/labels entry (entries: {names:?})")))?;
                npz.read(&yn)?
            }
        };
        (x, y, format!("{}:labels", path.display()))
    } else {
        let lp = labels_path.ok_or_else(|| DataError::format(path, "a .npy feature matrix needs a labels .npy file"))?;
        (npy::read_npy(path)?, npy::read_npy(lp)?, lp.display().to_string())
    };
    if x.header.shape.len() != 2 {
        return Err(DataError::format(path, format!("features must be 2-D (rows, dim), got shape {:?}", x.header.shape)));
    }
    if x.header.shape[0] == 0 {
        return Err(DataError::format(path, format!("no data rows (features of shape {:?})", x.header.shape)));
    }
    let labels = match (y.header.shape.len(), y.ints()) {
        (1, Ok(l)) => l.to_vec(),
        _ => return Err(DataError::Format { path: yname, reason: format!("labels must be a 1-D integer array, got {:?} {:?}", y.header.dtype, y.header.shape) }),
    };
    if labels.len() != x.header.shape[0] {
        return Err(DataError::Format { path: yname, reason: format!("{} labels for {} feature rows", labels.len(), x.header.shape[0]) });
    }
    Dataset::new(path.display().to_string(), x.to_f32(), vec![x.header.shape[1]], labels)
}

/// Groups sample indices by label (labels sorted).
pub fn indices_by_class(labels: &[i64]) -> BTreeMap<i64, Vec<usize>> {
    let mut m: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        m.entry(l).or_default().push(i);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(labels: Vec<i64>, names: &[&str]) -> Dataset {
        let n = labels.len();
        Dataset::with_names("d", vec![0.0; n], vec![1], labels, names.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    /// The leakage check compares names: two folders that both number their classes from
    /// 0 share nothing unless a name is in both.
    #[test]
    fn leakage_compares_names() {
        let train = named(vec![0, 1, 2], &["ann", "bob", "cy"]);
        let test = named(vec![0, 1], &["dee", "eve"]);
        assert!(check_no_leakage("train", &train, "test", &test).is_ok());
        let test = named(vec![0, 1, 1], &["dee", "bob"]);
        let e = check_no_leakage("train", &train, "test", &test).unwrap_err().to_string();
        assert!(e.contains("data leakage") && e.contains("1 class(es)") && e.contains("\"bob\""), "{e}");
        // Integer labels are classes by their decimal name.
        let a = Dataset::new("a", vec![0.0; 3], vec![1], vec![7, 3, 7]).unwrap();
        assert_eq!((a.labels.clone(), a.classes.clone()), (vec![1, 0, 1], vec!["3".to_string(), "7".into()]));
        let b = Dataset::new("b", vec![0.0; 1], vec![1], vec![7]).unwrap();
        assert!(check_no_leakage("a", &a, "b", &b).is_err());
    }

    #[test]
    fn concat_merges_class_tables_by_name() {
        let a = named(vec![0, 1], &["ann", "bob"]);
        let b = named(vec![0, 1], &["bob", "cy"]);
        let c = a.concat(&b, "c").unwrap();
        assert_eq!(c.classes, vec!["ann", "bob", "cy"]);
        assert_eq!(c.labels, vec![0, 1, 1, 2]);
        assert_eq!(c.label_names(), vec!["ann", "bob", "bob", "cy"]);
        let e = Dataset::with_names("x", vec![0.0], vec![1], vec![1], vec!["a".into()]).unwrap_err().to_string();
        assert!(e.contains("outside its table"), "{e}");
        let e = Dataset::with_names("x", vec![0.0], vec![1], vec![0], vec!["a".into(), "a".into()]).unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn random_split_is_disjoint_and_seeded() {
        let c: Vec<i64> = (0..100).collect();
        let a = ClassSplit::random(&c, 0.1, 0.2, 7).unwrap();
        a.check().unwrap();
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (70, 10, 20));
        assert_eq!(a, ClassSplit::random(&c, 0.1, 0.2, 7).unwrap());
        assert_ne!(a, ClassSplit::random(&c, 0.1, 0.2, 8).unwrap());
    }

    #[test]
    fn npy_roundtrip() {
        let dir = std::env::temp_dir().join(format!("margin-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        npy::write_npy_f32(&p, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
        let a = npy::read_npy(&p).unwrap();
        assert_eq!(a.header.shape, vec![2, 3]);
        assert_eq!(a.data, npy::NpyData::F32(vec![1., 2., 3., 4., 5., 6.]));
        assert!(a.ints().is_err(), "floats are never read as labels");
        std::fs::write(&p, &std::fs::read(&p).unwrap()[..100]).unwrap();
        let e = npy::read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("a.npy") && e.contains("truncated"), "{e}");
        // f64 values are kept as stored (no f32 round trip), integers exactly.
        npy::write_npy_f64(&p, &[2], &[0.1, 1e-300]).unwrap();
        assert_eq!(npy::read_npy(&p).unwrap().data, npy::NpyData::F64(vec![0.1, 1e-300]));
        npy::write_npy_i64(&p, &[3], &[-1, i64::MAX, 7]).unwrap();
        assert_eq!(npy::read_npy(&p).unwrap().ints().unwrap(), &[-1, i64::MAX, 7]);
    }

    /// A `uint64` label above `i64::MAX` is an error naming the file and element, never
    /// a wrapped negative label; a header claiming 10¹² elements is refused before any
    /// allocation of that size.
    #[test]
    fn npy_integers_are_converted_checked() {
        let dir = std::env::temp_dir().join(format!("margin-npy-u64-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("labels.npy");
        let header = "{'descr': '<u8', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = header.to_string();
        h.push_str(&" ".repeat(64 - (10 + h.len() + 1) % 64));
        h.push('\n');
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(&(1u64 << 63).to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = npy::read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("labels.npy") && e.contains("element 1") && e.contains("int64"), "{e}");
        let big = header.replace("(2,)", "(1000000000000, 8)");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = big;
        h.push_str(&" ".repeat(64 - (10 + h.len() + 1) % 64));
        h.push('\n');
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        std::fs::write(&p, &bytes).unwrap();
        let e = npy::read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
