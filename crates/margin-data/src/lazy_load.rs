//! [`load_data`](crate::load_data) for picture sources (image folder, zip, manifest)
//! without decoding the training pool: the pool is indexed ([`LazyImages`]), split by
//! class exactly as the eager loader splits it (the same split function, so the same
//! classes and samples in the same order), and only the training side stays lazy. The
//! validation and test sides — what evaluation embeds whole — are decoded here.
//!
//! Why the sides differ: training visits the pool many times in random batches, so it is
//! the part whose decoded size grows with the data set; evaluation sets are usually a
//! small share of the classes. Every file's header is checked at load time
//! ([`LazyImages::check_headers`]: one read of each file, no pixel decoded), so an empty,
//! truncated or mislabelled file stops the run (or, with `skip_bad`, leaves the index)
//! before training, as with eager loading; a file that fails only in its pixel data is
//! met by the loader ([`crate::lazy::Prefetch`]), which stops or skips it then.

use std::collections::BTreeSet;

use crate::image_folder::{Prep, Skipped, load_images_skipping};
use crate::lazy::LazyImages;
use crate::manifest::RowSplit;
use crate::spec::{choose_split, resolve};
use crate::{DataError, DataSpec, Dataset, Samples, SplitSpec, check_names_disjoint};

/// A picture source loaded lazily: the training side indexed, the others decoded.
pub struct LazyLoaded {
    /// Training classes, decoded on demand.
    pub train: LazyImages,
    /// Validation classes (held out of training), decoded.
    pub val: Option<Dataset>,
    /// Test classes (unseen), decoded.
    pub test: Option<Dataset>,
    /// Images of the decoded sides left out under `data.skip_bad`.
    pub skipped: Vec<Skipped>,
    /// Whether the training side skips bad files (`data.skip_bad`).
    pub skip_bad: bool,
}

/// The names of the classes `src` has samples of.
pub fn present_names(src: &dyn Samples) -> BTreeSet<String> {
    let labels: BTreeSet<i64> = (0..src.len()).map(|i| src.label(i)).collect();
    labels.into_iter().map(|y| src.class_name(y).into_owned()).collect()
}

/// Loads and splits a picture source as [`crate::load_data`] does, keeping the training
/// side lazy (module docs); `cache_bytes` bounds its decoded-sample cache. `None` for data
/// kinds that are not pictures (they are read whole by `load_data`).
pub fn load_data_lazy(data: &DataSpec, sp: &SplitSpec, seed: u64, cache_bytes: usize) -> Result<Option<LazyLoaded>, DataError> {
    data.validate()?;
    let seed = sp.seed.unwrap_or(seed);
    let mut skipped = Vec::new();
    let (pool, test, skip_bad) = match data {
        DataSpec::ImageFolder { path, test, image_size, invert, preprocess, skip_bad } => {
            let prep = Prep::of(*image_size, *invert, preprocess.as_ref());
            let pool = LazyImages::open(&resolve(path), prep)?;
            let t = match test {
                Some(t) => {
                    let (t, s) = load_images_skipping(&resolve(t), &prep, *skip_bad)?;
                    skipped.extend(s);
                    Some(t)
                }
                None => None,
            };
            (pool, t, *skip_bad)
        }
        DataSpec::Manifest { path, image_size, invert, preprocess, skip_bad } => {
            let prep = Prep::of(*image_size, *invert, preprocess.as_ref());
            let path = resolve(path);
            let (train, test): (Vec<_>, Vec<_>) = crate::manifest::read_manifest(&path)?.into_iter().partition(|e| e.split == RowSplit::Train);
            if train.is_empty() {
                return Err(DataError::format(&path, "the manifest lists no training image (every row has split = test)"));
            }
            let pool = LazyImages::from_entries(path.display().to_string(), train.into_iter().map(|e| (e.path, e.label)).collect(), prep)?;
            let t = if test.is_empty() {
                None
            } else {
                let rows = test.into_iter().map(|e| (e.path, e.label)).collect();
                let (t, s) = LazyImages::from_entries(format!("{} [test rows]", path.display()), rows, prep)?.to_dataset_skipping(*skip_bad)?;
                skipped.extend(s);
                Some(t)
            };
            (pool, t, *skip_bad)
        }
        _ => return Ok(None),
    };
    let (pool, bad) = pool.check_headers(skip_bad)?;
    skipped.extend(bad);
    let pool = pool.with_cache(cache_bytes);
    if let Some(t) = &test
        && t.sample_shape != pool.sample_shape()
    {
        return Err(DataError::Split(format!(
            "the test set {} has samples of shape {:?} but the training set {} has {:?}: both must have the same shape",
            t.name,
            t.sample_shape,
            pool.name(),
            pool.sample_shape()
        )));
    }
    let present: Vec<i64> = pool.labels().iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    let split = choose_split(pool.name(), pool.classes(), &present, sp, seed)?;
    let mut decoded = |classes: &[i64], side: &str| -> Result<Option<Dataset>, DataError> {
        if classes.is_empty() {
            return Ok(None);
        }
        let (d, s) = pool.with_classes(classes, format!("{} [{side} classes]", pool.name())).to_dataset_skipping(skip_bad)?;
        skipped.extend(s);
        Ok(Some(d))
    };
    let val = decoded(&split.val, "validation")?;
    let mut test_set = decoded(&split.test, "test")?;
    if let Some(t) = test {
        test_set = Some(match test_set {
            Some(s) => s.concat(&t, "test")?,
            None => t,
        });
    }
    let train = pool.with_classes(&split.train, format!("{} [train classes]", pool.name()));
    if train.is_empty() {
        return Err(DataError::Split("no training samples left after the split".into()));
    }
    let names = present_names(&train);
    let names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    if let Some(t) = &test_set {
        check_names_disjoint("train", &names, "test", &t.present_class_names())?;
    }
    if let Some(v) = &val {
        check_names_disjoint("train", &names, "validation", &v.present_class_names())?;
        if let Some(t) = &test_set {
            crate::check_no_leakage("validation", v, "test", t)?;
        }
    }
    Ok(Some(LazyLoaded { train, val, test: test_set, skipped, skip_bad }))
}
