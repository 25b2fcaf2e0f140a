//! Where the trainer's batches come from: a data set held in memory, or a lazy picture
//! source ([`margin_data::lazy::LazyImages`]) decoded by worker threads that prefetch the
//! next batches of the epoch's plan while the current step runs
//! ([`margin_data::lazy::Prefetch`]).
//!
//! **Same seed, same run.** The epoch's plan (P×K batches of sample indices) is made from
//! the labels alone, and both feeds hand the step the same batch: the same samples, in the
//! same order, with the same values (the lazy index lists the eager loader's samples in its
//! order, and the prefetcher returns batches in plan order whatever the thread timing). So a
//! run trains to the same bits either way (tested: `tests/lazy_feed.rs`).
//!
//! **Memory.** A lazy feed holds the file index, one label per sample, the batches in
//! flight (`workers × (depth + 1)` at most) and the decoded-sample cache (bounded in bytes,
//! [`DEFAULT_CACHE_BYTES`]): nothing that grows with the number of images beyond the index.
//!
//! **Bad files** (`data.skip_bad`): a lazy feed leaves a bad file out of its batch, warns
//! once per file and lists it in [`Feed::skipped`]; without `skip_bad` the first bad file
//! stops the run, naming it.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use margin_data::image_folder::Skipped;
use margin_data::lazy::{Batch, Prefetch};
use margin_data::{DataError, Dataset, Samples};

use crate::{Observer, TrainError};

/// The decoded-sample cache of a lazy feed: 256 MiB (about 430 RGB pictures at 224²; a
/// whole small photo set at 64², so later epochs decode nothing).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// How a lazy feed's loader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Decoding threads (≥ 1; the batches do not depend on it).
    pub workers: usize,
    /// Finished batches each worker may hold ahead of the step (≥ 1).
    pub depth: usize,
    /// Leave bad files out of their batch and report them, instead of stopping.
    pub skip_bad: bool,
}

impl LoaderOptions {
    /// As many workers as cores (2 to 4: decoding overlaps the step, which uses every
    /// core too), two batches ahead each.
    pub fn new(skip_bad: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        LoaderOptions { workers: cores.clamp(2, 4), depth: 2, skip_bad }
    }
}

/// The loader's share of a lazy run's memory ([`Feed::loader_memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderMemory {
    /// The decoded-sample cache's bound.
    pub cache_bytes: u64,
    /// Samples held in finished or decoding batches at most.
    pub in_flight_samples: u64,
    /// Bytes of one decoded sample (f32).
    pub sample_bytes: u64,
}

impl LoaderMemory {
    /// Adds the loader's lines to `budget`.
    pub fn add_to(&self, budget: &mut margin_data::memory::Budget) {
        budget.add("the loader's decoded-sample cache", 1, self.cache_bytes);
        budget.add(format!("{} samples in the loader's batches in flight", self.in_flight_samples), self.in_flight_samples, self.sample_bytes);
    }
}

/// The training data of [`crate::Trainer::fit_feed`].
pub enum Feed<'a> {
    /// Every sample decoded in memory (borrowed, or owned by a job).
    Memory(Cow<'a, Dataset>),
    /// Decoded per batch by the loader's threads.
    Lazy(LazyFeed),
}

/// A lazy source with its loader settings and the bad files met so far.
pub struct LazyFeed {
    src: Arc<dyn Samples + Send>,
    labels: Vec<i64>,
    opts: LoaderOptions,
    skipped: Mutex<Vec<Skipped>>,
}

impl Feed<'static> {
    /// A lazy feed of `src`.
    pub fn lazy(src: Arc<dyn Samples + Send>, opts: LoaderOptions) -> Self {
        let labels = (0..src.len()).map(|i| src.label(i)).collect();
        Feed::Lazy(LazyFeed { src, labels, opts, skipped: Mutex::new(Vec::new()) })
    }
}

impl Feed<'_> {
    /// The source's name (for messages).
    pub fn name(&self) -> &str {
        match self {
            Feed::Memory(d) => &d.name,
            Feed::Lazy(l) => l.src.name(),
        }
    }

    /// Shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        match self {
            Feed::Memory(d) => &d.sample_shape,
            Feed::Lazy(l) => l.src.sample_shape(),
        }
    }

    /// Every sample's label (what the sampler plans from).
    pub fn labels(&self) -> &[i64] {
        match self {
            Feed::Memory(d) => &d.labels,
            Feed::Lazy(l) => &l.labels,
        }
    }

    /// What a lazy feed's loader holds besides the file index, for the memory budget:
    /// the decoded-sample cache (its bound, [`DEFAULT_CACHE_BYTES`] in a job, or the whole set
    /// when it is smaller) and the batches in
    /// flight (`workers × (depth + 1)` batches of `batch` samples, plus the one the step
    /// holds). `None` for data in memory (already counted: it is loaded when the budget
    /// is checked).
    pub fn loader_memory(&self, batch: usize) -> Option<LoaderMemory> {
        let Feed::Lazy(l) = self else { return None };
        let sample_bytes = l.src.sample_shape().iter().product::<usize>() as u64 * 4;
        let batches = (l.opts.workers as u64) * (l.opts.depth as u64 + 1) + 1;
        let cache_bytes = (l.src.cache_bytes() as u64).min((l.src.len() as u64).saturating_mul(sample_bytes));
        Some(LoaderMemory { cache_bytes, in_flight_samples: batches.saturating_mul(batch as u64), sample_bytes })
    }

    /// The bad files a lazy feed left out so far (`(sample id, error)`).
    pub fn skipped(&self) -> Vec<Skipped> {
        match self {
            Feed::Memory(_) => Vec::new(),
            Feed::Lazy(l) => l.skipped.lock().map(|s| s.clone()).unwrap_or_default(),
        }
    }

    /// Refuses training data the run cannot use: another sample shape than the model's,
    /// classes shared with `val` (by name), augmentation of non-images. The rotated-class
    /// augmentation needs the data in memory (it builds new classes from every sample).
    pub(crate) fn check_lazy(&self, shape: &[usize], cfg: &crate::TrainConfig, val: Option<&Dataset>) -> Result<(), TrainError> {
        let Feed::Lazy(l) = self else { return Ok(()) };
        if l.src.sample_shape() != shape {
            return Err(DataError::Split(format!("training data has sample shape {:?}, the model expects {shape:?}", l.src.sample_shape())).into());
        }
        if let Some(v) = val {
            let names = margin_data::lazy_load::present_names(l.src.as_ref());
            let names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
            margin_data::check_names_disjoint("train", &names, "validation", &v.present_class_names())?;
        }
        if let Some(a) = cfg.augment
            && (shape.len() != 3 || a.rotated_classes)
        {
            return Err(margin::MarginError::InvalidConfig {
                field: "augment",
                value: format!("{a:?}"),
                reason: "rotated_classes needs the training set in memory, and augmentation applies to images only",
            }
            .into());
        }
        let classes = l.labels.iter().collect::<BTreeSet<_>>().len();
        if classes < 2 {
            return Err(DataError::Split(format!("{} has {classes} class(es); metric learning needs at least 2", l.src.name())).into());
        }
        Ok(())
    }

    /// The batches of one epoch's `plan`, in order (a lazy feed starts its workers).
    pub(crate) fn epoch(&self, plan: Vec<Vec<usize>>) -> EpochFeed<'_> {
        match self {
            Feed::Memory(d) => EpochFeed::Memory { data: d.as_ref(), plan, next: 0 },
            Feed::Lazy(l) => {
                let it = Prefetch::start(Arc::clone(&l.src), plan, l.opts.workers, l.opts.depth, l.opts.skip_bad);
                EpochFeed::Lazy { it, feed: l }
            }
        }
    }
}

/// One epoch's batches.
pub(crate) enum EpochFeed<'a> {
    Memory { data: &'a Dataset, plan: Vec<Vec<usize>>, next: usize },
    Lazy { it: Prefetch, feed: &'a LazyFeed },
}

impl EpochFeed<'_> {
    /// The next batch of the plan; a lazy feed's newly met bad files are warned about.
    pub(crate) fn next_batch(&mut self, obs: &mut dyn Observer) -> Result<Batch, DataError> {
        match self {
            EpochFeed::Memory { data, plan, next } => {
                let idx = plan.get(*next).ok_or_else(|| DataError::Split(format!("{}: the epoch's plan has {} batches", data.name, plan.len())))?;
                let mut values = Vec::with_capacity(idx.len() * data.dim());
                for &i in idx {
                    values.extend_from_slice(data.sample(i));
                }
                let b = Batch { index: *next, samples: idx.clone(), labels: idx.iter().map(|&i| data.labels[i]).collect(), values, skipped: Vec::new() };
                *next += 1;
                Ok(b)
            }
            EpochFeed::Lazy { it, feed } => {
                let b = it.next().unwrap_or_else(|| Err(DataError::Split(format!("{}: the loader ran out of batches", feed.src.name()))))?;
                if !b.skipped.is_empty()
                    && let Ok(mut seen) = feed.skipped.lock()
                {
                    for (i, why) in &b.skipped {
                        let id = feed.src.sample_id(*i).into_owned();
                        if !seen.iter().any(|(f, _)| *f == id) {
                            obs.warn(&format!("skipped a bad image (data.skip_bad): {why}"));
                            seen.push((id, why.clone()));
                        }
                    }
                }
                Ok(b)
            }
        }
    }
}

/// What a job trains and evaluates on: [`margin_data::load_data`]'s sides, the training
/// side as a feed — lazy for picture sources (image folder, zip, manifest) unless the
/// rotated-class augmentation needs every sample in memory.
pub(crate) struct Loaded {
    pub train: Feed<'static>,
    pub train_classes: usize,
    pub val: Option<Dataset>,
    pub test: Option<Dataset>,
    pub one_shot: Option<std::path::PathBuf>,
    pub skipped: Vec<Skipped>,
    /// The calibration share, taken out of `train` already.
    pub share: Share,
}

/// The calibration share of the training pool ([`margin_data::calibration`]), taken at load
/// time so that a lazy pool stays lazy: only the held-out classes are decoded.
pub(crate) enum Share {
    /// The configuration has validation classes: they calibrate, no share is taken.
    NotNeeded,
    /// Held out of `train`: the share's samples and how they were chosen, in words.
    Held { calibration: Dataset, rule: String },
    /// No share, and why (disabled, or too few classes).
    Skipped(String),
}

/// Loads the data of `cfg` ([`Loaded`]), the calibration share held out of training when
/// the configuration has no validation classes (`split.calibration_fraction`).
pub(crate) fn load(cfg: &crate::RunConfig) -> Result<Loaded, DataError> {
    use margin_data::calibration::{self, Choice};
    let fraction = cfg.split.calibration_fraction.unwrap_or(0.0);
    let share_seed = cfg.split.seed.unwrap_or(cfg.train.seed);
    let min_train = cfg.train.sampler.classes_per_batch;
    let rotated = cfg.train.augment.is_some_and(|a| a.rotated_classes);
    if !rotated && let Some(l) = margin_data::load_data_lazy(&cfg.data, &cfg.split, cfg.train.seed, DEFAULT_CACHE_BYTES)? {
        let (mut pool, mut skipped) = (l.train, l.skipped);
        let share = if l.val.is_some() {
            Share::NotNeeded
        } else {
            let classes: Vec<i64> = pool.labels().iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
            match calibration::choose(&classes, fraction, min_train, share_seed)? {
                Choice::Held { held, kept, rule } => {
                    let name = pool.name().to_string();
                    let (calibration, bad) = pool.with_classes(&held, format!("{name} [calibration classes]")).to_dataset_skipping(l.skip_bad)?;
                    skipped.extend(bad);
                    pool = pool.with_classes(&kept, name);
                    Share::Held { calibration, rule }
                }
                Choice::Skipped(why) => Share::Skipped(why),
            }
        };
        let train_classes = pool.labels().iter().collect::<BTreeSet<_>>().len();
        let train = Feed::lazy(Arc::new(pool), LoaderOptions::new(l.skip_bad));
        return Ok(Loaded { train, train_classes, val: l.val, test: l.test, one_shot: None, skipped, share });
    }
    let l = margin_data::load_data(&cfg.data, &cfg.split, cfg.train.seed)?;
    let (train, share) = if l.val.is_some() {
        (l.train, Share::NotNeeded)
    } else {
        match calibration::hold_out(&l.train, fraction, min_train, share_seed)? {
            calibration::Share::Held(c) => (c.train, Share::Held { calibration: c.calibration, rule: c.rule }),
            calibration::Share::Skipped(why) => (l.train, Share::Skipped(why)),
        }
    };
    let train_classes = train.classes().len();
    Ok(Loaded { train: Feed::Memory(Cow::Owned(train)), train_classes, val: l.val, test: l.test, one_shot: l.one_shot, skipped: l.skipped, share })
}
