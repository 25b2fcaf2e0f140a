//! `.npy` inputs and outputs of the commands, through margin-data's one reader and writer
//! (`margin_data::npy`), with the command-line's error context.

use std::path::Path;

use anyhow::{Context, Result, bail};
use margin_data::npy::{self, NpyArray, NpyData};
use ndarray::{Array2, ArrayD, IxDyn};

/// Element type of a floating-point `.npy` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatKind {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

fn read(path: &Path) -> Result<NpyArray> {
    Ok(npy::read_npy(path)?)
}

/// Reads a 2-D float matrix (f32 or f64) as f64, remembering the stored kind.
pub fn read_matrix(path: &Path) -> Result<(Array2<f64>, FloatKind)> {
    let a = read(path)?;
    let kind = match a.data {
        NpyData::F32(_) => FloatKind::F32,
        NpyData::F64(_) => FloatKind::F64,
        NpyData::Int(_) => bail!("{} is not a .npy file of float32 or float64 values (found {:?})", path.display(), a.header.dtype),
    };
    let shape = a.header.shape.clone();
    if shape.len() != 2 {
        bail!("{} must be 2-D [rows, dim], found shape {shape:?}", path.display());
    }
    Ok((Array2::from_shape_vec((shape[0], shape[1]), a.to_f64()).expect("the reader returns shape-many values"), kind))
}

/// Reads an integer (or bool) array of any width as `i64`; a value that does not fit
/// (a `uint64` above `i64::MAX`) is an error, never a silent wrap; floats are refused.
pub fn read_ints(path: &Path) -> Result<ArrayD<i64>> {
    let a = read(path)?;
    let v = a.ints().with_context(|| format!("{}: integers (int8..int64, uint8..uint64) or bools expected", path.display()))?.to_vec();
    Ok(ArrayD::from_shape_vec(IxDyn(&a.header.shape), v).expect("the reader returns shape-many values"))
}

/// Reads a label vector: 1-D `[rows]` (or a `[rows, 1]` column).
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let a = read_ints(path)?;
    if a.ndim() != 1 && !(a.ndim() == 2 && a.shape()[1] == 1) {
        bail!("{}: labels must be 1-D (one per row), found shape {:?}", path.display(), a.shape());
    }
    Ok(a.iter().copied().collect())
}

/// Reads an `[n, width]` array of row indices (e.g. triplets: width 3; pairs: width 2).
pub fn read_index_rows(path: &Path, width: usize) -> Result<Vec<Vec<usize>>> {
    let a = read_ints(path)?;
    let shape = a.shape().to_vec();
    if shape.len() != 2 || shape[1] != width {
        bail!("{} must have shape [n, {width}], found {shape:?}", path.display());
    }
    a.as_slice()
        .expect("C order")
        .chunks(width)
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .map(|&v| usize::try_from(v).map_err(|_| anyhow::anyhow!("{} row {i} has a negative index {v}", path.display())))
                .collect()
        })
        .collect()
}

/// An element type the commands write to `.npy`.
pub trait NpyElement: Copy {
    /// Writes `data` (C order, `shape`) atomically.
    fn write(path: &Path, shape: &[usize], data: &[Self]) -> Result<(), margin_data::DataError>;
}

impl NpyElement for f32 {
    fn write(path: &Path, shape: &[usize], data: &[Self]) -> Result<(), margin_data::DataError> {
        npy::write_npy_f32(path, shape, data)
    }
}
impl NpyElement for f64 {
    fn write(path: &Path, shape: &[usize], data: &[Self]) -> Result<(), margin_data::DataError> {
        npy::write_npy_f64(path, shape, data)
    }
}
impl NpyElement for i64 {
    fn write(path: &Path, shape: &[usize], data: &[Self]) -> Result<(), margin_data::DataError> {
        npy::write_npy_i64(path, shape, data)
    }
}

/// Writes a 2-D array to `.npy` atomically.
pub fn write_matrix<T: NpyElement>(path: &Path, m: &Array2<T>) -> Result<()> {
    let m = m.as_standard_layout();
    T::write(path, &[m.nrows(), m.ncols()], m.as_slice().expect("standard layout")).with_context(|| format!("writing {}", path.display()))
}
