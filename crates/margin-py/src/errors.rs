//! Library errors as Python exceptions: every margin error about user data (shape, row,
//! value, parameter) is a `ValueError` carrying margin's own message, which names the input.

use pyo3::PyErr;
use pyo3::exceptions::{PyOSError, PyValueError};

/// margin-eval's errors.
pub fn eval(e: margin_eval::EvalError) -> PyErr {
    match e {
        margin_eval::EvalError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// margin-search's errors (I/O faults are `OSError`, the rest `ValueError`).
pub fn search(e: margin_search::SearchError) -> PyErr {
    match e {
        margin_search::SearchError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// margin's (losses, miners) errors.
pub fn margin(e: margin::MarginError) -> PyErr {
    PyValueError::new_err(e.to_string())
}
