//! The one rule for a matrix of embeddings every distance can be computed on: every value
//! finite, and every row's squared norm representable in the element type. The second
//! half matters: a row of `1e30`s is finite in `f32`, but its squared norm is `inf`, so
//! every Euclidean distance (and the L2 normalisation) of it is `inf` or `NaN`. Both the
//! losses (`margin`) and the evaluation (`margin-eval`) check their inputs with
//! [`first_bad_row`], so a file one refuses the other refuses too, with the same cause.

use crate::{Real, dot};

/// Why a row cannot be used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RowFault {
    /// A value that is NaN or infinite.
    NonFinite {
        /// Row.
        row: usize,
        /// Column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Every value is finite but the squared norm overflows the element type.
    Overflow {
        /// Row.
        row: usize,
        /// The row's largest absolute value.
        max_abs: f64,
    },
}

/// The first row of `data` (row-major, `dim` columns; `dim > 0`) that breaks the rule.
pub fn first_bad_row<T: Real>(data: &[T], dim: usize) -> Option<RowFault> {
    debug_assert!(dim > 0 && data.len().is_multiple_of(dim), "first_bad_row: {} values are not rows of {dim}", data.len());
    // One vectorised pass per row: the squared norm is finite exactly when every value is
    // finite and it does not overflow, so only a row that fails it is searched again.
    for (r, row) in data.chunks_exact(dim.max(1)).enumerate() {
        if dot(row, row).is_finite() {
            continue;
        }
        if let Some(c) = row.iter().position(|v| !v.is_finite()) {
            return Some(RowFault::NonFinite { row: r, col: c, value: row[c].to_f64() });
        }
        let max_abs = row.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
        return Some(RowFault::Overflow { row: r, max_abs });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_rows_whose_squared_norm_overflows_are_found() {
        let ok = [1f32, 2.0, 3.0, 4.0];
        assert_eq!(first_bad_row(&ok, 2), None);
        let big = [1f32, 2.0, 1e30, 1e30];
        assert_eq!(first_bad_row(&big, 2), Some(RowFault::Overflow { row: 1, max_abs: 1e30f32 as f64 }));
        assert_eq!(first_bad_row(&[1e30f64, 1e30], 2), None, "representable in f64");
        let nan = [1f64, f64::NAN];
        assert!(matches!(first_bad_row(&nan, 2), Some(RowFault::NonFinite { row: 0, col: 1, .. })));
    }
}
