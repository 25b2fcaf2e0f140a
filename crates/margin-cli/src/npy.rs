//! Reading `.npy` inputs of any common dtype and writing outputs atomically.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ndarray::{Array2, ArrayD, Ix2};
use ndarray_npy::{ReadNpyExt, ReadableElement, WritableElement, WriteNpyExt};

/// Element type of a floating-point `.npy` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatKind {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

fn try_read<T: ReadableElement>(path: &Path) -> Option<ArrayD<T>> {
    let file = File::open(path).ok()?;
    ArrayD::<T>::read_npy(BufReader::new(file)).ok()
}

fn open_check(path: &Path) -> Result<()> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(())
}

/// Reads a 2-D float matrix (f32 or f64) as f64, remembering the stored kind.
pub fn read_matrix(path: &Path) -> Result<(Array2<f64>, FloatKind)> {
    open_check(path)?;
    let (any, kind) = if let Some(a) = try_read::<f32>(path) {
        (a.mapv(f64::from), FloatKind::F32)
    } else if let Some(a) = try_read::<f64>(path) {
        (a, FloatKind::F64)
    } else {
        bail!("{} is not a readable .npy file of float32 or float64 values", path.display())
    };
    let shape = any.shape().to_vec();
    let m = any
        .into_dimensionality::<Ix2>()
        .map_err(|_| anyhow::anyhow!("{} must be 2-D [rows, dim], found shape {shape:?}", path.display()))?;
    Ok((m, kind))
}

/// Reads an integer (or bool) array of any width as `i64`; a value that does not fit
/// (a `uint64` above `i64::MAX`) is an error, never a silent wrap.
pub fn read_ints(path: &Path) -> Result<ArrayD<i64>> {
    open_check(path)?;
    fn checked<T: Copy>(a: ArrayD<T>, path: &Path, conv: impl Fn(T) -> Option<i64>) -> Result<ArrayD<i64>> {
        let v: Option<Vec<i64>> = a.as_standard_layout().iter().map(|&x| conv(x)).collect();
        let v = v.with_context(|| format!("{}: a value does not fit in int64", path.display()))?;
        Ok(ArrayD::from_shape_vec(a.shape(), v).expect("same number of elements"))
    }
    macro_rules! attempt {
        ($($t:ty),*) => {$(
            if let Some(a) = try_read::<$t>(path) {
                return checked(a, path, |x| i64::try_from(x).ok());
            }
        )*};
    }
    attempt!(i64, i32, i16, i8, u8, u16, u32, u64);
    if let Some(a) = try_read::<bool>(path) {
        return checked(a, path, |x| Some(i64::from(x)));
    }
    bail!("{} is not a readable .npy file of integers (int8..int64, uint8..uint64) or bools; floats are not accepted", path.display())
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
    let m = a
        .into_dimensionality::<Ix2>()
        .ok()
        .filter(|m| m.ncols() == width)
        .ok_or_else(|| anyhow::anyhow!("{} must have shape [n, {width}], found {shape:?}", path.display()))?;
    m.rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.iter()
                .map(|&v| usize::try_from(v).map_err(|_| anyhow::anyhow!("{} row {i} has a negative index {v}", path.display())))
                .collect()
        })
        .collect()
}

/// A sibling temporary path for an atomic write of `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes bytes atomically: a temporary file in the same folder, synced, then renamed.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        write(&mut f)?;
        f.sync_all().with_context(|| format!("cannot sync {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a 2-D array to `.npy` atomically.
pub fn write_matrix<T: WritableElement>(path: &Path, m: &Array2<T>) -> Result<()> {
    write_atomic(path, |f| {
        m.write_npy(std::io::BufWriter::new(f)).with_context(|| format!("cannot write {}", path.display()))
    })
}
