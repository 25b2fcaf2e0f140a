//! Validated inputs: embedding matrices and their labels.
//!
//! Inputs are borrowed row-major buffers (`&[T]` plus a dimension), so callers
//! can pass an `ndarray` slice, a `Vec` taken from a Burn tensor or a
//! memory-mapped file without copying. Validation happens once, in the
//! constructors, and every later function may rely on it: shape consistent,
//! non-empty, every value finite and every squared norm representable.

use std::collections::HashMap;

use crate::error::{EvalError, Result};
use margin_linalg::Real;
use margin_linalg::rows::RowFault;

/// A validated, borrowed `rows × dim` row-major matrix of embeddings.
#[derive(Debug, Clone)]
pub struct Embeddings<'a, T: Real> {
    name: String,
    data: &'a [T],
    rows: usize,
    dim: usize,
}

impl<'a, T: Real> Embeddings<'a, T> {
    /// Wraps `data` (row-major, `data.len() / dim` rows of `dim` values).
    ///
    /// `name` identifies the input in error messages (e.g. `"--embeddings E.npy"`).
    ///
    /// # Errors
    /// [`EvalError::Empty`] for no rows or `dim == 0`, [`EvalError::Shape`] if
    /// `data.len()` is not a multiple of `dim`, [`EvalError::NonFinite`] for a
    /// NaN or ±∞ (naming row and column), [`EvalError::Overflow`] if a row's
    /// squared norm is not representable in `T`.
    pub fn new(name: impl Into<String>, data: &'a [T], dim: usize) -> Result<Self> {
        let name = name.into();
        if dim == 0 {
            return Err(EvalError::Empty {
                input: name,
                what: "dimension is 0".into(),
            });
        }
        if data.is_empty() {
            return Err(EvalError::Empty {
                input: name,
                what: "no rows".into(),
            });
        }
        if !data.len().is_multiple_of(dim) {
            return Err(EvalError::Shape {
                input: name,
                len: data.len(),
                dim,
            });
        }
        let rows = data.len() / dim;
        match margin_linalg::rows::first_bad_row(&data, dim) {
            Some(RowFault::NonFinite { row, col, value }) => {
                return Err(EvalError::NonFinite { input: name, row, column: col, value });
            }
            Some(RowFault::Overflow { row, .. }) => return Err(EvalError::Overflow { input: name, row }),
            None => {}
        }
        Ok(Self {
            name,
            data,
            rows,
            dim,
        })
    }

    /// Name given at construction.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Dimension (columns).
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The whole row-major buffer.
    pub fn data(&self) -> &'a [T] {
        self.data
    }
    /// Row `i`.
    ///
    /// # Panics
    /// If `i >= rows()`.
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Embeddings together with one integer label per row.
#[derive(Debug, Clone)]
pub struct Labelled<'a, T: Real> {
    /// The embeddings.
    pub embeddings: Embeddings<'a, T>,
    labels: &'a [i64],
    labels_name: String,
}

impl<'a, T: Real> Labelled<'a, T> {
    /// Pairs `embeddings` with `labels` (one per row; any `i64` values).
    ///
    /// # Errors
    /// [`EvalError::LabelCount`] when the counts differ.
    pub fn new(
        embeddings: Embeddings<'a, T>,
        labels_name: impl Into<String>,
        labels: &'a [i64],
    ) -> Result<Self> {
        let labels_name = labels_name.into();
        if labels.len() != embeddings.rows() {
            return Err(EvalError::LabelCount {
                labels: labels_name,
                n_labels: labels.len(),
                embeddings: embeddings.name().to_string(),
                rows: embeddings.rows(),
            });
        }
        Ok(Self {
            embeddings,
            labels,
            labels_name,
        })
    }
    /// The labels.
    pub fn labels(&self) -> &'a [i64] {
        self.labels
    }
    /// Name of the labels input.
    pub fn labels_name(&self) -> &str {
        &self.labels_name
    }
}

/// Labels mapped to dense class ids `0..n_classes`, in order of first
/// appearance, with each class's member rows.
#[derive(Debug, Clone)]
pub struct ClassIndex {
    /// Class id of each row.
    pub ids: Vec<u32>,
    /// Original label of each class id.
    pub labels: Vec<i64>,
    /// Rows of each class, ascending.
    pub members: Vec<Vec<u32>>,
}

impl ClassIndex {
    /// Builds the index of `labels`.
    pub fn new(labels: &[i64]) -> Self {
        let mut map: HashMap<i64, u32> = HashMap::new();
        let mut ids = Vec::with_capacity(labels.len());
        let mut class_labels = Vec::new();
        let mut members: Vec<Vec<u32>> = Vec::new();
        for (row, &l) in labels.iter().enumerate() {
            let id = *map.entry(l).or_insert_with(|| {
                class_labels.push(l);
                members.push(Vec::new());
                (class_labels.len() - 1) as u32
            });
            members[id as usize].push(row as u32);
            ids.push(id);
        }
        Self {
            ids,
            labels: class_labels,
            members,
        }
    }
    /// Number of distinct labels.
    pub fn n_classes(&self) -> usize {
        self.labels.len()
    }
    /// Size of the largest class.
    pub fn largest(&self) -> usize {
        self.members.iter().map(Vec::len).max().unwrap_or(0)
    }
    /// Class id of `label`, if present (linear search; see [`Self::lookup`]).
    pub fn id_of(&self, label: i64) -> Option<u32> {
        self.labels
            .iter()
            .position(|&l| l == label)
            .map(|p| p as u32)
    }
    /// A label → class id map.
    pub fn lookup(&self) -> HashMap<i64, u32> {
        self.labels
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, i as u32))
            .collect()
    }
}

/// Largest row count addressable by the `u32` neighbour indices.
pub(crate) const MAX_ROWS: usize = u32::MAX as usize;

/// Checks that query and reference agree in dimension.
pub(crate) fn check_dims<T: Real>(q: &Embeddings<T>, r: &Embeddings<T>) -> Result<()> {
    if q.dim() != r.dim() {
        return Err(EvalError::DimensionMismatch {
            query: q.name().to_string(),
            query_dim: q.dim(),
            reference: r.name().to_string(),
            reference_dim: r.dim(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_row() {
        let data = [1.0f32, 2.0, 3.0, f32::NAN, 5.0, 6.0];
        let err = Embeddings::new("E.npy", &data, 2).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                EvalError::NonFinite {
                    row: 1,
                    column: 1,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("E.npy") && msg.contains("row 1"), "{msg}");
        let inf = [1.0f64, f64::INFINITY];
        assert!(matches!(
            Embeddings::new("x", &inf, 1).unwrap_err(),
            EvalError::NonFinite {
                row: 1,
                column: 0,
                ..
            }
        ));
        let big = [3e20f32, 0.0];
        assert!(matches!(
            Embeddings::new("x", &big, 2).unwrap_err(),
            EvalError::Overflow { row: 0, .. }
        ));
        assert!(matches!(
            Embeddings::new("x", &data[..5], 2).unwrap_err(),
            EvalError::Shape { .. }
        ));
        assert!(matches!(
            Embeddings::<f32>::new("x", &[], 2).unwrap_err(),
            EvalError::Empty { .. }
        ));
        assert!(matches!(
            Embeddings::new("x", &data, 0).unwrap_err(),
            EvalError::Empty { .. }
        ));
    }

    #[test]
    fn label_count_is_checked() {
        let data = [1.0f32, 2.0, 3.0, 4.0];
        let e = Embeddings::new("E.npy", &data, 2).unwrap();
        let err = Labelled::new(e, "L.npy", &[1, 2, 3]).unwrap_err();
        assert!(
            err.to_string()
                .contains("L.npy has 3 labels but E.npy has 2 rows"),
            "{err}"
        );
    }

    #[test]
    fn class_index() {
        let c = ClassIndex::new(&[7, -1, 7, 3]);
        assert_eq!(c.ids, vec![0, 1, 0, 2]);
        assert_eq!(c.members[0], vec![0, 2]);
        assert_eq!(c.largest(), 2);
        assert_eq!(c.id_of(3), Some(2));
    }
}
