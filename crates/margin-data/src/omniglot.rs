//! The Omniglot one-shot classification benchmark (`all_runs.zip`).
//!
//! Lake, Salakhutdinov & Tenenbaum 2015, "Human-level concept learning
//! through probabilistic program induction" (Science 350:6266): 20 runs of
//! 20-way one-shot classification. Each run `runNN/` holds `training/classYY.png`
//! (one drawing of each of 20 characters), `test/itemXX.png` (another
//! drawer's version of each) and `class_labels.txt`, whose lines
//! `runNN/test/itemXX.png runNN/training/classYY.png` give the correct match.
//! A trial is one test image; it is correct when its nearest training image
//! of the same run is the listed one. 20 × 20 = 400 trials.
//!
//! The embedding is the caller's: [`OmniglotOneShot::load`] returns the
//! images (grey in `[0, 1]`, 1 = white background, 0 = ink, 105 × 105) and the runs as
//! row indices ([`margin_eval::OneShotRun`]); the caller embeds the images (in
//! [`OmniglotOneShot::images`] order, preprocessed as the training data: [`ink`])
//! and scores them with [`margin_eval::one_shot_accuracy`].
//!
//! **Ink, one rule.** A pixel's ink is `1 − grey` ([`ink`]), for the bundled `.npz`
//! (bool, True = white: grey 1 or 0) and these PNGs alike. (The former rule for the PNGs,
//! `grey ≥ 128 → paper`, gives the same values: every pixel of all_runs.zip is 0 or 255,
//! which tests/omniglot.rs checks.)
//!
//! Image order: run by run (sorted by name); within a run the training
//! images sorted by file name, then the test images sorted by file name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

pub use margin_eval::OneShotRun;

use crate::DataError;
use crate::archive::{Archive, Which};

type Result<T> = std::result::Result<T, DataError>;

/// The ink of a grey level in `[0, 1]` (1 = white paper): `1 − grey`. The one rule for
/// Omniglot's bundled `.npz` (a bool pixel is grey 1 or 0), its one-shot PNGs and
/// `invert = true` image folders.
#[inline]
pub fn ink(grey: f32) -> f32 {
    1.0 - grey
}

/// One decoded image.
#[derive(Clone, Debug, PartialEq)]
pub struct OneShotImage {
    /// Path inside the archive (e.g. `run01/test/item01.png`).
    pub path: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Row-major grey levels in `[0, 1]`: 1 = white background, 0 = ink (decoded by
    /// [`crate::images::decode_grey`], the workspace's one image decoder).
    pub grey: Vec<f32>,
}

/// The benchmark: images plus run structure.
#[derive(Clone, Debug, PartialEq)]
pub struct OmniglotOneShot {
    /// All images, in the documented order.
    pub images: Vec<OneShotImage>,
    /// The runs.
    pub runs: Vec<OneShotRun>,
}

fn format_err(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::Format { path: path.display().to_string(), reason: reason.into() }
}

impl OmniglotOneShot {
    /// Reads and decodes `all_runs.zip`.
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be opened, [`DataError::Format`]
    /// for a broken archive, PNG or `class_labels.txt`, or a run whose test
    /// images and answers do not match.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut zip = Archive::open(path)?;
        // run name → (training names, test names)
        let mut runs: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for name in zip.names() {
            let parts: Vec<&str> = name.split('/').collect();
            if parts.len() == 3 && parts[2].ends_with(".png") {
                let entry = runs.entry(parts[0].to_string()).or_default();
                match parts[1] {
                    "training" => entry.0.insert(name.clone()),
                    "test" => entry.1.insert(name.clone()),
                    _ => false,
                };
            }
        }
        if runs.is_empty() {
            return Err(format_err(
                path,
                "no runNN/training/*.png or runNN/test/*.png entries",
            ));
        }
        let mut images = Vec::new();
        let mut out_runs = Vec::new();
        for (run, (training, test)) in runs {
            let labels_name = format!("{run}/class_labels.txt");
            let text = read_entry(&mut zip, path, &labels_name)?;
            let text = String::from_utf8(text)
                .map_err(|_| format_err(path, format!("{labels_name} is not UTF-8")))?;
            let train_pos: HashMap<&str, usize> = training
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let mut answer_of: HashMap<String, usize> = HashMap::new();
            for (ln, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let f: Vec<&str> = line.split_whitespace().collect();
                let bad = || format_err(path, format!("{labels_name} line {}: {line:?}", ln + 1));
                if f.len() != 2 {
                    return Err(bad());
                }
                let (t, c) = (f[0].trim_start_matches("./"), f[1].trim_start_matches("./"));
                let pos = *train_pos.get(c).ok_or_else(bad)?;
                if !test.contains(t) || answer_of.insert(t.to_string(), pos).is_some() {
                    return Err(bad());
                }
            }
            let base = images.len();
            let mut answers = Vec::with_capacity(test.len());
            for t in &test {
                answers.push(*answer_of.get(t).ok_or_else(|| {
                    format_err(path, format!("{labels_name} has no answer for {t}"))
                })?);
            }
            for name in training.iter().chain(&test) {
                let bytes = read_entry(&mut zip, path, name)?;
                let what = format!("{}:{name}", path.display());
                let (grey, h, w) = crate::images::decode_grey(&bytes, &what)?;
                images.push(OneShotImage { path: name.clone(), width: w as u32, height: h as u32, grey });
            }
            out_runs.push(OneShotRun {
                name: run,
                training: (base..base + training.len()).collect(),
                test: (base + training.len()..base + training.len() + test.len()).collect(),
                answers,
            });
        }
        Ok(Self {
            images,
            runs: out_runs,
        })
    }

    /// Number of trials (test images over all runs).
    pub fn n_trials(&self) -> usize {
        self.runs.iter().map(|r| r.test.len()).sum()
    }

    /// The images as ink ([`ink`]), area-resized to `size × size`: `images.len() × size²`
    /// row-major values, the preprocessing of the Omniglot training data.
    pub fn ink_images(&self, size: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.images.len() * size * size);
        let mut dst = vec![0f32; size * size];
        for img in &self.images {
            let ink: Vec<f32> = img.grey.iter().map(|&g| ink(g)).collect();
            crate::area_resize(&ink, img.height as usize, img.width as usize, &mut dst, size, size);
            out.extend_from_slice(&dst);
        }
        out
    }
}

fn read_entry(zip: &mut Archive, _path: &Path, name: &str) -> Result<Vec<u8>> {
    Ok(zip.read(Which::Name(name))?.1)
}
