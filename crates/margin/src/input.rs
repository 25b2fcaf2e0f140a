//! Validation of user inputs, shared by every loss and miner.

use burn::tensor::{DType, Tensor};

use crate::error::{MarginError, Result};
use margin_linalg::rows::{RowFault, first_bad_row};

/// `x` as a constant: out of the autodiff graph and not tracked.
///
/// Burn's `detach` starts a new graph lineage but keeps a leaf's `require_grad`:
/// `x.detach()` of a tracked leaf is itself a tracked leaf, so every operation on
/// it is still recorded and run backward (for the fused losses, a wasted
/// `[B, B] × [B, d]` GEMM per step). This cuts both.
pub fn constant<const D: usize>(x: &Tensor<D>) -> Tensor<D> {
    x.clone().detach().set_require_grad(false)
}

/// Reads a float tensor back to the host as `f64`.
pub fn to_host<const D: usize>(t: &Tensor<D>) -> Vec<f64> {
    t.to_data().convert::<f64>().try_into_vec::<f64>().expect("converted to f64 above")
}

/// Checks that an embedding matrix is non-empty, has `D > 0` and only finite values
/// (scanned in the tensor's own float type: no `f64` copy for an `f32` tensor).
pub fn check_embeddings(input: &'static str, x: &Tensor<2>) -> Result<()> {
    let [rows, cols] = x.dims();
    if rows == 0 || cols == 0 {
        let what = if cols == 0 { "the embedding dimension D must be > 0" } else { "at least one row is needed" };
        return Err(MarginError::Empty { input, shape: vec![rows, cols], what });
    }
    let data = x.to_data();
    // One pass in the tensor's own float type (no f64 copy for an f32 tensor): the first
    // non-finite value, else the first finite row whose squared norm overflows (a row of
    // 1e30 in f32: every distance of it would be inf or NaN) — the rule margin-eval
    // applies too (margin_linalg::rows).
    let dtype = data.dtype();
    let fault = match dtype {
        DType::F32 => data.as_slice::<f32>().ok().map(|v| first_bad_row(v, cols)),
        DType::F64 => data.as_slice::<f64>().ok().map(|v| first_bad_row(v, cols)),
        _ => None,
    };
    let fault = match fault {
        Some(found) => found,
        None => {
            let host = data.convert::<f64>().try_into_vec::<f64>().expect("converted to f64 above");
            first_bad_row(&host, cols)
        }
    };
    match fault {
        Some(RowFault::NonFinite { row, col, value }) => Err(MarginError::NonFinite { input, row, col, value, shape: vec![rows, cols] }),
        Some(RowFault::Overflow { row, max_abs }) => {
            Err(MarginError::Overflow { input, row, max_abs, dtype: format!("{dtype:?}").to_lowercase(), shape: vec![rows, cols] })
        }
        None => Ok(()),
    }
}

/// Checks that there is one label per row.
pub fn check_labels(
    input: &'static str,
    x: &Tensor<2>,
    labels_input: &'static str,
    labels: &[i64],
) -> Result<()> {
    let [rows, cols] = x.dims();
    if labels.len() != rows {
        return Err(MarginError::LabelCount {
            input,
            labels_input,
            labels: labels.len(),
            rows,
            shape: vec![rows, cols],
        });
    }
    Ok(())
}

/// Checks that `other` has exactly the shape of `base`.
pub fn check_same_shape(
    input: &'static str,
    other: &Tensor<2>,
    expected_from: &'static str,
    base: &Tensor<2>,
) -> Result<()> {
    if other.dims() != base.dims() {
        return Err(MarginError::ShapeMismatch {
            input,
            got: other.dims().to_vec(),
            expected_from,
            expected: base.dims().to_vec(),
        });
    }
    Ok(())
}

/// Checks that `other` has as many columns as `base`.
pub fn check_same_dim(
    input: &'static str,
    other: &Tensor<2>,
    expected_from: &'static str,
    base: &Tensor<2>,
) -> Result<()> {
    if other.dims()[1] != base.dims()[1] {
        return Err(MarginError::ShapeMismatch {
            input,
            got: other.dims().to_vec(),
            expected_from,
            expected: vec![other.dims()[0], base.dims()[1]],
        });
    }
    Ok(())
}

/// Checks that a configuration number is finite.
pub fn check_finite_config(field: &'static str, value: f64) -> Result<()> {
    crate::check::finite(field, value).map(|_| ())
}

/// A `[1]` zero attached to `x`'s autodiff graph (its gradient is 0, never NaN,
/// because `x` was checked finite).
pub fn attached_zero(x: &Tensor<2>) -> Tensor<1> {
    x.clone().sum().mul_scalar(0.0)
}
