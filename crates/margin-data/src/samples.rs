//! The dataset interface every consumer (trainer, embedding, evaluation) reads samples
//! through: length, label, class name, sample id, and decoding sample `i` on demand.
//!
//! [`crate::Dataset`] (every sample decoded in memory) is one implementation; lazy sources
//! (photo folders decoded per batch, text) implement the same trait, so the trainer never
//! needs every sample in RAM. Labels are indices into the source's class table
//! ([`Samples::class_name`]); the names are what files a user sees carry (Conventions in
//! ARCHITECTURE.md).

use std::borrow::Cow;

use crate::{DataError, Dataset};

/// A labelled sample source, possibly lazy.
pub trait Samples: Sync {
    /// A name for messages (usually the source file or folder).
    fn name(&self) -> &str;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there is no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shape of one decoded sample (`[d]` for vectors, `[c, h, w]` for images).
    fn sample_shape(&self) -> &[usize];
    /// Values per decoded sample.
    fn dim(&self) -> usize {
        self.sample_shape().iter().product()
    }
    /// The class label of sample `i`.
    fn label(&self, i: usize) -> i64;
    /// The name of class `label` (what outputs carry).
    fn class_name(&self, label: i64) -> Cow<'_, str>;
    /// A stable id of sample `i` (its path, or `source#row`), for outputs and messages.
    fn sample_id(&self, i: usize) -> Cow<'_, str>;
    /// Decodes sample `i` into `out` (`dim()` values).
    ///
    /// # Errors
    /// [`DataError`] naming the sample when it cannot be read or decoded (a lazy source's
    /// file may have changed since it was listed).
    fn decode_into(&self, i: usize, out: &mut [f32]) -> Result<(), DataError>;
    /// The bound in bytes of the decoded samples this source keeps for reuse (0: none, or
    /// the samples are in memory already), for memory budgets.
    fn cache_bytes(&self) -> usize {
        0
    }
}

impl Samples for Dataset {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn sample_shape(&self) -> &[usize] {
        &self.sample_shape
    }
    fn label(&self, i: usize) -> i64 {
        self.labels[i]
    }
    fn class_name(&self, label: i64) -> Cow<'_, str> {
        Cow::Borrowed(Dataset::class_name(self, label))
    }
    fn sample_id(&self, i: usize) -> Cow<'_, str> {
        Cow::Owned(format!("{}#{i}", self.name))
    }
    fn decode_into(&self, i: usize, out: &mut [f32]) -> Result<(), DataError> {
        if i >= self.labels.len() || out.len() != self.dim() {
            return Err(DataError::Split(format!(
                "{}: sample {i} of {} into a buffer of {} values (a sample has {})",
                self.name,
                self.labels.len(),
                out.len(),
                self.dim()
            )));
        }
        out.copy_from_slice(self.sample(i));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_memory_dataset_serves_its_rows() {
        let d = Dataset::new("mem", vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2], vec![7, 7, 9]).unwrap();
        let s: &dyn Samples = &d;
        assert_eq!((s.len(), s.dim(), s.label(2)), (3, 2, 1));
        let mut out = [0.0; 2];
        s.decode_into(1, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0]);
        assert_eq!(s.sample_id(1), "mem#1");
        assert_eq!(s.class_name(1), "9");
        assert!(s.decode_into(3, &mut out).unwrap_err().to_string().contains("sample 3 of 3"));
    }
}
