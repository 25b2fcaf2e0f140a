//! The run configuration's Burn-free sections: where the data come from ([`DataSpec`]),
//! the class-disjoint split ([`SplitSpec`]), the final evaluation ([`EvalSpec`]), the
//! whole file ([`RunConfig`], generic over its training section), and [`load_data`],
//! which loads and splits a [`DataSpec`] with the leakage check.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{ClassSplit, DataError, Dataset};

/// Where the data come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// Omniglot: train on images_background.npz, test on images_evaluation.npz (+ all_runs.zip).
    Omniglot {
        /// Folder with the two .npz files and all_runs.zip.
        dir: PathBuf,
        /// Side of the downsampled images.
        #[serde(default = "default_size")]
        image_size: usize,
    },
    /// `root/<class>/<image>` folder or zip (any format `margin_data::decode` reads).
    ImageFolder {
        /// Training pool.
        path: PathBuf,
        /// Separate test set (same layout), else split by class.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Side of the resized images.
        #[serde(default = "default_size")]
        image_size: usize,
        /// Ink = 1 − grey (dark drawings on light paper).
        #[serde(default)]
        invert: bool,
        /// Photo preprocessing (`[data.preprocess]`: channels, resize, normalisation —
        /// [`crate::preprocess`]); when given it replaces `image_size`/`invert`'s grey
        /// area-resize.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preprocess: Option<crate::preprocess::ImagePreprocess>,
        /// Leave out images that cannot be read or decoded, and report them (off: a bad
        /// image stops the run, naming the file).
        #[serde(default, skip_serializing_if = "is_false")]
        skip_bad: bool,
    },
    /// A manifest (`.csv` or `.jsonl`: path, label, optional split — [`crate::manifest`]);
    /// rows with `split = test` are the separate test set.
    Manifest {
        /// The manifest file (image paths are relative to its folder).
        path: PathBuf,
        /// Side of the resized images (grey area-resize, when `preprocess` is not given).
        #[serde(default = "default_size")]
        image_size: usize,
        /// Ink = 1 − grey.
        #[serde(default)]
        invert: bool,
        /// Photo preprocessing, as for `image_folder`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preprocess: Option<crate::preprocess::ImagePreprocess>,
        /// Leave out images that cannot be read or decoded, and report them (off: a bad
        /// image stops the run, naming the file).
        #[serde(default, skip_serializing_if = "is_false")]
        skip_bad: bool,
    },
    /// Feature matrix in .npz (x/y entries) or .npy (+ labels .npy).
    Features {
        /// Features.
        path: PathBuf,
        /// Labels (.npy) for a .npy feature file.
        #[serde(default)]
        labels: Option<PathBuf>,
        /// Separate test features.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Labels of the separate test features.
        #[serde(default)]
        test_labels: Option<PathBuf>,
    },
    /// CSV/TSV (or .gz of one): one label column plus numeric features; the reading
    /// rules are [`crate::delimited`]'s.
    Csv {
        /// The file.
        path: PathBuf,
        /// Label column (negative: from the end).
        #[serde(default = "default_label_column")]
        label_column: i64,
        /// Cell separator, one ASCII character (default `","`; `"\t"` for TSV).
        #[serde(default = "default_delimiter")]
        delimiter: String,
        /// Whether `"` quotes cells (default true; false for STS-B-like TSV).
        #[serde(default = "yes")]
        quoting: bool,
        /// Header rule: `"auto"` (default), `true` or `false`.
        #[serde(default)]
        header: crate::CsvHeader,
        /// Separate test CSV.
        #[serde(default)]
        test: Option<PathBuf>,
        /// Divide every feature by this (e.g. 16 for 0..16 pixel values).
        #[serde(default = "one")]
        scale: f64,
    },
}

impl DataSpec {
    /// The preprocessing this data source applies to its raw inputs (what the model card
    /// records); `sample_shape` is the loaded training data's.
    pub fn preprocessing(&self, sample_shape: &[usize]) -> crate::card::Preprocessing {
        use crate::card::Preprocessing;
        match self {
            DataSpec::Omniglot { image_size, .. } => Preprocessing::GreyImage { size: *image_size, invert: true },
            DataSpec::ImageFolder { preprocess: Some(p), .. } | DataSpec::Manifest { preprocess: Some(p), .. } => Preprocessing::Image(*p),
            DataSpec::ImageFolder { image_size, invert, .. } | DataSpec::Manifest { image_size, invert, .. } => {
                Preprocessing::GreyImage { size: *image_size, invert: *invert }
            }
            DataSpec::Features { .. } => Preprocessing::Features { dim: sample_shape.iter().product(), scale: 1.0 },
            DataSpec::Csv { scale, .. } => Preprocessing::Features { dim: sample_shape.iter().product(), scale: *scale },
        }
    }

    /// Checks the fields that need more than their type: `data.image_size` within the
    /// image caps ([`crate::limits`]), `data.delimiter` one ASCII character, `data.scale`
    /// finite and > 0. [`load_data`] calls it first.
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            DataSpec::ImageFolder { preprocess: Some(p), .. } | DataSpec::Manifest { preprocess: Some(p), .. } => p.validate("data.preprocess"),
            DataSpec::Omniglot { image_size, .. } | DataSpec::ImageFolder { image_size, .. } | DataSpec::Manifest { image_size, .. } => {
                crate::limits::check_target_size(*image_size, "data.image_size")
            }
            DataSpec::Features { .. } => Ok(()),
            DataSpec::Csv { delimiter, scale, .. } => {
                crate::delimited::parse_delimiter(delimiter, "data.delimiter")?;
                if !(scale.is_finite() && *scale > 0.0) {
                    return Err(DataError::Config { field: "data.scale", value: scale.to_string(), reason: "must be finite and > 0" });
                }
                Ok(())
            }
        }
    }

    /// The CSV reading options of a `csv` source (`None` for other kinds).
    pub fn csv_options(&self) -> Result<Option<crate::CsvOptions>, DataError> {
        match self {
            DataSpec::Csv { label_column, delimiter, quoting, header, .. } => Ok(Some(crate::CsvOptions {
                label_column: *label_column,
                delimiter: crate::delimited::parse_delimiter(delimiter, "data.delimiter")?,
                quoting: *quoting,
                header: *header,
            })),
            _ => Ok(None),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_size() -> usize {
    28
}
fn default_delimiter() -> String {
    ",".into()
}
fn default_label_column() -> i64 {
    -1
}
fn one() -> f64 {
    1.0
}

/// Class-disjoint split of the training pool.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Fraction of the pool's classes held out for validation.
    #[serde(default)]
    pub val_fraction: f64,
    /// Fraction of the pool's classes held out as test (when there is no separate test set).
    #[serde(default)]
    pub test_fraction: f64,
    /// Seed of the class shuffle (default: `train.seed`).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Explicit training classes (with `test_classes`), instead of fractions, by name
    /// (a folder's class path, a manifest label; an integer label of a `.npy`/CSV file is
    /// named by its decimal form, so `[0, 1]` still means labels 0 and 1).
    #[serde(default)]
    pub train_classes: Option<Vec<ClassRef>>,
    /// Explicit validation classes.
    #[serde(default)]
    pub val_classes: Option<Vec<ClassRef>>,
    /// Explicit test classes.
    #[serde(default)]
    pub test_classes: Option<Vec<ClassRef>>,
    /// Share of the training classes held out of training to calibrate the model card's
    /// thresholds when there are no validation classes (`margin_data::calibration`; unset:
    /// [`crate::calibration::DEFAULT_CALIBRATION_FRACTION`], written into the run's
    /// `config.toml`; 0: none, the card then has no thresholds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_fraction: Option<f64>,
}

/// A class named in a configuration: its name, or an integer label (which names the class
/// by its decimal form). Written back as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassRef {
    /// An integer label (`.npy`/CSV label columns).
    Number(i64),
    /// A class name.
    Name(String),
}

impl ClassRef {
    /// The class's name.
    pub fn name(&self) -> String {
        match self {
            ClassRef::Number(n) => n.to_string(),
            ClassRef::Name(s) => s.clone(),
        }
    }
}

/// Final evaluation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Verification pairs: all when at most this many, else a seeded sample.
    #[serde(default = "default_pairs")]
    pub max_pairs: usize,
    /// Classes shown in the report's 2-D map.
    #[serde(default = "default_map_classes")]
    pub map_classes: usize,
    /// Also evaluate the untrained network (the baseline in metrics.json).
    #[serde(default = "yes")]
    pub untrained_baseline: bool,
    /// Test-time augmentation of embeddings (`crate::tta`): recorded in the model card, so
    /// every command that embeds with the model averages the same views.
    #[serde(default, skip_serializing_if = "crate::tta::TestTimeAugment::is_none")]
    pub tta: crate::tta::TestTimeAugment,
}

fn default_pairs() -> usize {
    1_000_000
}
fn default_map_classes() -> usize {
    12
}
fn yes() -> bool {
    true
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec { max_pairs: default_pairs(), map_classes: default_map_classes(), untrained_baseline: true, tta: crate::tta::TestTimeAugment::None }
    }
}

/// The run-config format this release writes; a config with a larger `version` is refused.
pub const RUN_CONFIG_VERSION: u32 = 1;

fn config_version() -> u32 {
    RUN_CONFIG_VERSION
}

/// The whole run: what `config.toml` in the output folder holds.
///
/// Generic over the training section: margin-train reads it as its typed `TrainConfig`;
/// Burn-free readers (search, Python) can take it as a raw value
/// (`RunConfig<serde_json::Value>`, or a TOML table) and still read data, split and eval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig<T> {
    /// Format version ([`RUN_CONFIG_VERSION`]; files written before versioning read as 1).
    #[serde(default = "config_version")]
    pub version: u32,
    /// Parent folder of new runs.
    #[serde(default = "default_root")]
    pub output_root: PathBuf,
    /// Input data.
    pub data: DataSpec,
    /// Split.
    #[serde(default)]
    pub split: SplitSpec,
    /// Training.
    pub train: T,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalSpec,
}

fn default_root() -> PathBuf {
    PathBuf::from("runs")
}

impl<T: serde::de::DeserializeOwned> RunConfig<T> {
    /// Parses a run configuration (`config.toml`) from TOML text, refuses a newer version
    /// and validates the data section; `source` names the file in errors. Burn-free
    /// readers take `T = toml::Table`.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, DataError> {
        let cfg: Self = toml::from_str(text).map_err(|e| DataError::Format { path: source.to_string(), reason: format!("not a run configuration: {e}") })?;
        cfg.check_version(source)?;
        cfg.data.validate()?;
        Ok(cfg)
    }
}

impl<T> RunConfig<T> {
    /// Refuses a configuration written by a newer margin.
    pub fn check_version(&self, source: &str) -> Result<(), DataError> {
        if self.version > RUN_CONFIG_VERSION {
            return Err(DataError::Format {
                path: source.to_string(),
                reason: format!("configuration version {} is newer than this margin reads ({RUN_CONFIG_VERSION}); upgrade margin", self.version),
            });
        }
        Ok(())
    }
}

/// Resolves a data path: as given if it exists, else relative to the repository
/// (so `margin train` works from any folder of a checkout).
pub fn resolve(p: &Path) -> PathBuf {
    if p.exists() || p.is_absolute() {
        return p.to_path_buf();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p);
    if repo.exists() { repo } else { p.to_path_buf() }
}

/// The loaded data: training pool, optional validation and test sets.
pub struct Loaded {
    /// Training classes.
    pub train: Dataset,
    /// Validation classes (held out of training).
    pub val: Option<Dataset>,
    /// Test classes (unseen).
    pub test: Option<Dataset>,
    /// Omniglot one-shot benchmark file, when the data are Omniglot.
    pub one_shot: Option<PathBuf>,
    /// Images left out under `data.skip_bad`, with the error naming each.
    pub skipped: Vec<crate::image_folder::Skipped>,
}

/// Loads and splits the data (`seed`: the class shuffle's seed when `split.seed` is unset,
/// usually the training seed), enforcing class-disjointness.
pub fn load_data(data: &DataSpec, sp: &SplitSpec, seed: u64) -> Result<Loaded, DataError> {
    data.validate()?;
    let seed = sp.seed.unwrap_or(seed);
    let mut skipped = Vec::new();
    let (pool, test, one_shot) = match data {
        DataSpec::Omniglot { dir, image_size } => {
            let dir = resolve(dir);
            let o = crate::load_omniglot(&dir, *image_size)?;
            (o.background, Some(o.evaluation), Some(dir.join("all_runs.zip")))
        }
        DataSpec::ImageFolder { path, test, image_size, invert, preprocess, skip_bad } => {
            let prep = crate::image_folder::Prep::of(*image_size, *invert, preprocess.as_ref());
            let (d, s) = crate::image_folder::load_images_skipping(&resolve(path), &prep, *skip_bad)?;
            skipped.extend(s);
            let t = match test {
                Some(t) => {
                    let (t, s) = crate::image_folder::load_images_skipping(&resolve(t), &prep, *skip_bad)?;
                    skipped.extend(s);
                    Some(t)
                }
                None => None,
            };
            (d, t, None)
        }
        DataSpec::Manifest { path, image_size, invert, preprocess, skip_bad } => {
            let prep = crate::image_folder::Prep::of(*image_size, *invert, preprocess.as_ref());
            let (d, t, s) = crate::image_folder::load_manifest_skipping(&resolve(path), &prep, *skip_bad)?;
            skipped.extend(s);
            (d, t, None)
        }
        DataSpec::Features { path, labels, test, test_labels } => {
            let d = crate::load_features(&resolve(path), labels.as_deref().map(resolve).as_deref())?;
            let t = test.as_ref().map(|t| crate::load_features(&resolve(t), test_labels.as_deref().map(resolve).as_deref())).transpose()?;
            (d, t, None)
        }
        DataSpec::Csv { path, test, scale, .. } => {
            let o = data.csv_options()?.expect("a csv source has csv options");
            let mut d = crate::load_csv_with(&resolve(path), &o)?;
            let mut t = test.as_ref().map(|t| crate::load_csv_with(&resolve(t), &o)).transpose()?;
            d.divide_features(*scale, "data.scale")?;
            if let Some(t) = t.as_mut() {
                t.divide_features(*scale, "data.scale")?;
            }
            (d, t, None)
        }
    };
    if let Some(t) = &test
        && t.sample_shape != pool.sample_shape
    {
        return Err(DataError::Split(format!(
            "the test set {} has samples of shape {:?} but the training set {} has {:?}: both must have the same shape",
            t.name, t.sample_shape, pool.name, pool.sample_shape
        )));
    }
    let split = choose_split(&pool.name, &pool.classes, &pool.classes(), sp, seed)?;
    let train = pool.with_classes(&split.train, format!("{} [train classes]", pool.name));
    let val = (!split.val.is_empty()).then(|| pool.with_classes(&split.val, format!("{} [validation classes]", pool.name)));
    let mut test_set = (!split.test.is_empty()).then(|| pool.with_classes(&split.test, format!("{} [test classes]", pool.name)));
    if let Some(t) = test {
        test_set = Some(match test_set {
            Some(s) => s.concat(&t, "test")?,
            None => t,
        });
    }
    if train.is_empty() {
        return Err(DataError::Split("no training samples left after the split".into()));
    }
    // By name: a separate test set has its own class table.
    if let Some(t) = &test_set {
        crate::check_no_leakage("train", &train, "test", t)?;
    }
    if let Some(v) = &val {
        crate::check_no_leakage("train", &train, "validation", v)?;
        if let Some(t) = &test_set {
            crate::check_no_leakage("validation", v, "test", t)?;
        }
    }
    Ok(Loaded { train, val, test: test_set, one_shot, skipped })
}

/// The class-disjoint split of a pool (its name, class-name table and present labels,
/// sorted) by `sp`: explicit class lists by name, else seeded fractions; checked disjoint.
pub(crate) fn choose_split(pool_name: &str, table: &[String], classes: &[i64], sp: &SplitSpec, seed: u64) -> Result<ClassSplit, DataError> {
    let split = if sp.train_classes.is_some() || sp.test_classes.is_some() || sp.val_classes.is_some() {
        if sp.val_fraction > 0.0 || sp.test_fraction > 0.0 {
            return Err(DataError::Split(
                "split.val_fraction / split.test_fraction (or --val-fraction) cannot be combined with explicit \
                 split.train_classes / val_classes / test_classes: name the validation classes in split.val_classes"
                    .into(),
            ));
        }
        let present: std::collections::BTreeSet<i64> = classes.iter().copied().collect();
        let resolve = |field: &str, list: &Option<Vec<ClassRef>>| -> Result<Option<Vec<i64>>, DataError> {
            let Some(list) = list else { return Ok(None) };
            list.iter()
                .map(|c| {
                    let name = c.name();
                    table
                        .iter()
                        .position(|n| *n == name)
                        .map(|k| k as i64)
                        .filter(|k| present.contains(k))
                        .ok_or_else(|| DataError::Split(format!("{field} names class {name:?}, which is not in {pool_name}")))
                })
                .collect::<Result<Vec<i64>, _>>()
                .map(Some)
        };
        let val = resolve("split.val_classes", &sp.val_classes)?.unwrap_or_default();
        let test = resolve("split.test_classes", &sp.test_classes)?.unwrap_or_default();
        let train = resolve("split.train_classes", &sp.train_classes)?
            .unwrap_or_else(|| classes.iter().copied().filter(|c| !val.contains(c) && !test.contains(c)).collect());
        ClassSplit { train, val, test }
    } else {
        ClassSplit::random(classes, sp.val_fraction, sp.test_fraction, seed)?
    };
    split.check()?;
    Ok(split)
}
