//! Borrowing numpy arrays: C-contiguous `float32`/`float64` matrices and `int64` labels are
//! read in place (no copy); anything else is refused here with a `TypeError`/`ValueError`
//! naming the input. The Python layer (`margin/_arrays.py`) converts what it can
//! (`__array__` objects such as torch CPU tensors, other dtypes, strided views) before
//! calling in, so these checks are the last line, not the user's usual message.

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A borrowed 2-D float matrix in its own precision.
pub enum Matrix<'py> {
    /// `float32` rows.
    F32(PyReadonlyArray2<'py, f32>),
    /// `float64` rows.
    F64(PyReadonlyArray2<'py, f64>),
}

impl<'py> Matrix<'py> {
    /// Rows and columns.
    pub fn shape(&self) -> (usize, usize) {
        let s = match self {
            Matrix::F32(a) => a.shape(),
            Matrix::F64(a) => a.shape(),
        };
        (s[0], s[1])
    }
}

fn untyped<'a, 'py>(obj: &'a Bound<'py, PyAny>, name: &str) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    obj.cast::<PyUntypedArray>()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected a numpy array, got {}", type_name(obj))))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "an unknown type".into(), |n| n.to_string())
}

fn check_contiguous(a: &Bound<'_, PyUntypedArray>, name: &str) -> PyResult<()> {
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{name}: the array must be C-contiguous (use numpy.ascontiguousarray)")));
    }
    Ok(())
}

/// `obj` as a C-contiguous 2-D `float32`/`float64` matrix, borrowed.
pub fn matrix<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Matrix<'py>> {
    let a = untyped(obj, name)?;
    if a.ndim() != 2 {
        return Err(PyValueError::new_err(format!("{name}: expected a 2-D array (rows × dim), got shape {:?}", a.shape())));
    }
    check_contiguous(a, name)?;
    if let Ok(m) = obj.extract::<PyReadonlyArray2<'py, f32>>() {
        return Ok(Matrix::F32(m));
    }
    if let Ok(m) = obj.extract::<PyReadonlyArray2<'py, f64>>() {
        return Ok(Matrix::F64(m));
    }
    Err(PyTypeError::new_err(format!("{name}: expected float32 or float64 values, got dtype {}", a.dtype())))
}

/// `obj` as C-contiguous 1-D `int64` labels, borrowed.
pub fn labels<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<PyReadonlyArray1<'py, i64>> {
    let a = untyped(obj, name)?;
    if a.ndim() != 1 {
        return Err(PyValueError::new_err(format!("{name}: expected a 1-D array of labels, got shape {:?}", a.shape())));
    }
    check_contiguous(a, name)?;
    obj.extract::<PyReadonlyArray1<'py, i64>>()
        .map_err(|_| PyTypeError::new_err(format!("{name}: expected int64 labels, got dtype {}", a.dtype())))
}

/// The contiguous slice of a borrowed array (checked contiguous above).
pub fn slice<'a, T: numpy::Element>(a: &'a PyReadonlyArray2<'_, T>) -> &'a [T] {
    a.as_slice().expect("checked C-contiguous on entry")
}

/// The contiguous slice of borrowed labels.
pub fn label_slice<'a>(a: &'a PyReadonlyArray1<'_, i64>) -> &'a [i64] {
    a.as_slice().expect("checked C-contiguous on entry")
}

/// Widens a borrowed matrix to `f64` (mixed precisions are computed in f64, as `margin eval`
/// does).
pub fn to_f64(m: &Matrix<'_>) -> Vec<f64> {
    match m {
        Matrix::F32(a) => slice(a).iter().map(|&v| f64::from(v)).collect(),
        Matrix::F64(a) => slice(a).to_vec(),
    }
}
