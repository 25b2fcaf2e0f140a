//! The workspace's one `.npy` / `.npz` reader and `.npy` writer (NumPy format v1–v3, C
//! order): every command and loader reads arrays through it, so one rule holds everywhere
//! (floats kept as stored, integers converted to `i64` with a checked conversion, no
//! allocation sized by an unchecked header).
//!
//! Supported element types: `|b1`, `|u1`, `|i1`, `<i2`, `<u2`, `<i4`, `<u4`, `<i8`, `<u8`,
//! `<f4`, `<f8`. Every failure is a [`DataError`] naming the file (and the `.npz` entry).
//!
//! Sizes: the header's shape × element size is computed with checked arithmetic and
//! compared with the bytes that actually follow the header (the file's length, or the
//! `.npz` member's declared size, itself checked by [`crate::archive`]) before anything
//! is allocated, so a 200-byte file claiming `(10¹², 8)` is refused with both numbers.

use std::io::{Read, Write};
use std::path::Path;

use super::DataError;
use crate::archive::{Archive, Which};

/// Element type of an `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `|b1`
    Bool,
    /// Unsigned integer of this many bytes.
    U(usize),
    /// Signed integer of this many bytes.
    I(usize),
    /// IEEE float of this many bytes (4 or 8).
    F(usize),
}

impl DType {
    fn parse(descr: &str) -> Option<Self> {
        // `<` little-endian, `|` not applicable, `=` native (little on every platform
        // margin builds for); `>` big-endian is not supported.
        let rest = descr.strip_prefix(['<', '|', '='])?;
        match rest {
            "b1" => Some(DType::Bool),
            "u1" | "u2" | "u4" | "u8" => Some(DType::U(rest[1..].parse().ok()?)),
            "i1" | "i2" | "i4" | "i8" => Some(DType::I(rest[1..].parse().ok()?)),
            "f4" | "f8" => Some(DType::F(rest[1..].parse().ok()?)),
            _ => None,
        }
    }

    /// NumPy's name of the type (`float64`, `uint8`, `bool`).
    pub fn name(self) -> String {
        match self {
            DType::Bool => "bool".into(),
            DType::U(n) => format!("uint{}", 8 * n),
            DType::I(n) => format!("int{}", 8 * n),
            DType::F(n) => format!("float{}", 8 * n),
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool => 1,
            DType::U(n) | DType::I(n) | DType::F(n) => n,
        }
    }
}

/// The header of an `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Shape (C order).
    pub shape: Vec<usize>,
}

impl NpyHeader {
    /// Number of elements (the header's shape product is checked not to overflow when read).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads and validates an `.npy` header from `r`; `what` names the file/entry in errors.
/// Returns the header and its length in bytes (magic and length field included).
pub fn read_header(r: &mut (impl Read + ?Sized), what: &str) -> Result<(NpyHeader, u64), DataError> {
    let bad = |reason: String| DataError::Format { path: what.to_string(), reason };
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|e| bad(format!("truncated .npy header: {e}")))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("not an .npy array (bad magic)".into()));
    }
    let (header_len, field_len) = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| bad(format!("truncated .npy header: {e}")))?;
            (u16::from_le_bytes(b) as usize, 2)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| bad(format!("truncated .npy header: {e}")))?;
            (u32::from_le_bytes(b) as usize, 4)
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    if header_len > 1 << 20 {
        return Err(bad(format!("implausible .npy header length {header_len}")));
    }
    let mut h = vec![0u8; header_len];
    r.read_exact(&mut h).map_err(|e| bad(format!("truncated .npy header: {e}")))?;
    let h = String::from_utf8_lossy(&h);
    let field = |key: &str| -> Option<&str> {
        let i = h.find(&format!("'{key}'"))?;
        let rest = h.get(i + key.len() + 2..)?;
        Some(rest[rest.find(':')? + 1..].trim_start())
    };
    let descr = field("descr").and_then(|s| s.strip_prefix('\'')).and_then(|s| s.split('\'').next());
    let descr = descr.ok_or_else(|| bad("header has no 'descr'".into()))?;
    let dtype = DType::parse(descr).ok_or_else(|| bad(format!("unsupported dtype {descr:?}")))?;
    if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
        return Err(bad("Fortran-order arrays are not supported".into()));
    }
    let shape = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("header has no 'shape'".into()))?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("bad shape in header: {e}")))?;
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if elements.and_then(|n| n.checked_mul(dtype.size())).is_none() {
        return Err(bad(format!("shape {shape:?} has more elements than this machine can address")));
    }
    Ok((NpyHeader { dtype, shape }, (8 + field_len + header_len) as u64))
}

impl NpyHeader {
    /// Bytes of data this header declares (checked when the header was read).
    pub fn data_bytes(&self) -> u64 {
        (self.len() as u64).saturating_mul(self.dtype.size() as u64)
    }

    /// Refuses a header that declares more data than the `available` bytes after it.
    fn check_available(&self, available: u64, what: &str) -> Result<(), DataError> {
        let need = self.data_bytes();
        if need > available {
            return Err(DataError::Format {
                path: what.to_string(),
                reason: format!(
                    "truncated data: the header declares shape {:?} of {} ({need} bytes) but only {available} bytes follow it",
                    self.shape,
                    self.dtype.name()
                ),
            });
        }
        Ok(())
    }
}

/// The values of an array, in the widest type of its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4` values, as stored.
    F32(Vec<f32>),
    /// `<f8` values, as stored.
    F64(Vec<f64>),
    /// Bool and integer values of any width, converted to `i64` (checked: a `uint64` above
    /// `i64::MAX` is an error, never a wrapped value).
    Int(Vec<i64>),
}

/// A whole array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Header (original dtype and shape).
    pub header: NpyHeader,
    /// The values, C order.
    pub data: NpyData,
    /// The file (and `.npz` entry) for messages.
    pub what: String,
}

impl NpyArray {
    /// The values as `f32` (floats rounded, integers converted: model inputs and features).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::Int(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The values as `f64` (integers converted).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::Int(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The values of an integer or bool array; a float array is refused (labels and
    /// indices are never silently rounded).
    pub fn ints(&self) -> Result<&[i64], DataError> {
        match &self.data {
            NpyData::Int(v) => Ok(v),
            _ => Err(DataError::Format {
                path: self.what.clone(),
                reason: format!("expected an integer or bool array, found {:?} of shape {:?}", self.header.dtype, self.header.shape),
            }),
        }
    }
}

/// Elements to reserve up front: never more than this from a header alone (a 200-byte
/// file can claim 10¹² elements; the vector grows as the data actually arrive).
const MAX_RESERVE: usize = 1 << 24;

/// Reads the elements of `header` from `r`, calling `f` with each one as stored.
fn read_elements(r: &mut (impl Read + ?Sized), header: &NpyHeader, what: &str, mut f: impl FnMut(Element)) -> Result<(), DataError> {
    let size = header.dtype.size();
    let total = header.len();
    let mut buf = vec![0u8; 1 << 16];
    let per = buf.len() / size;
    let mut done = 0;
    while done < total {
        let n = per.min(total - done);
        r.read_exact(&mut buf[..n * size]).map_err(|e| DataError::Format {
            path: what.to_string(),
            reason: format!("truncated data: expected {total} elements of shape {:?}, read failed after {done}: {e}", header.shape),
        })?;
        for (k, c) in buf[..n * size].chunks_exact(size).enumerate() {
            let e = match header.dtype {
                DType::Bool | DType::U(1) => Element::Int(i64::from(c[0])),
                DType::I(1) => Element::Int(i64::from(c[0] as i8)),
                DType::U(2) => Element::Int(i64::from(u16::from_le_bytes([c[0], c[1]]))),
                DType::I(2) => Element::Int(i64::from(i16::from_le_bytes([c[0], c[1]]))),
                DType::U(4) => Element::Int(i64::from(u32::from_le_bytes(c.try_into().expect("4 bytes")))),
                DType::I(4) => Element::Int(i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes")))),
                DType::U(8) => {
                    let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                    Element::Int(i64::try_from(x).map_err(|_| DataError::Format {
                        path: what.to_string(),
                        reason: format!("element {} is {x}, which does not fit in int64", done + k),
                    })?)
                }
                DType::I(8) => Element::Int(i64::from_le_bytes(c.try_into().expect("8 bytes"))),
                DType::F(4) => Element::F32(f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                DType::F(8) => Element::F64(f64::from_le_bytes(c.try_into().expect("8 bytes"))),
                _ => unreachable!("DType::parse returns these dtypes only"),
            };
            f(e);
        }
        done += n;
    }
    Ok(())
}

/// One element as stored.
#[derive(Clone, Copy)]
enum Element {
    F32(f32),
    F64(f64),
    Int(i64),
}

/// Reads a whole `.npy` array from a reader holding `len` bytes in all (header included):
/// the declared data are checked against `len` before anything is allocated.
pub fn read_array(r: &mut (impl Read + ?Sized), len: u64, what: &str) -> Result<NpyArray, DataError> {
    let (header, header_len) = read_header(r, what)?;
    header.check_available(len.saturating_sub(header_len), what)?;
    let reserve = header.len().min(MAX_RESERVE);
    let mut data = match header.dtype {
        DType::F(4) => NpyData::F32(Vec::with_capacity(reserve)),
        DType::F(_) => NpyData::F64(Vec::with_capacity(reserve)),
        _ => NpyData::Int(Vec::with_capacity(reserve)),
    };
    read_elements(r, &header, what, |e| match (&mut data, e) {
        (NpyData::F32(v), Element::F32(x)) => v.push(x),
        (NpyData::F64(v), Element::F64(x)) => v.push(x),
        (NpyData::Int(v), Element::Int(x)) => v.push(x),
        _ => unreachable!("the data vector was chosen by the header's dtype"),
    })?;
    Ok(NpyArray { header, data, what: what.to_string() })
}

/// Reads an `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
    read_array(&mut std::io::BufReader::new(f), len, &path.display().to_string())
}

/// Reads an `.npy` array held in memory (`what` names it in errors): the same reader as
/// [`read_npy`], for data that do not come from a file (and the fuzz targets).
pub fn from_bytes(bytes: &[u8], what: &str) -> Result<NpyArray, DataError> {
    read_array(&mut &bytes[..], bytes.len() as u64, what)
}

/// An open `.npz` archive.
pub struct Npz {
    zip: Archive,
}

impl Npz {
    /// Opens an `.npz` file.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(Npz { zip: Archive::open(path)? })
    }

    /// Reads an `.npz` archive held in memory (`what` names it in errors).
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Self, DataError> {
        Ok(Npz { zip: Archive::from_bytes(bytes, what)? })
    }

    /// Entry names without the `.npy` suffix.
    pub fn names(&self) -> Vec<String> {
        self.zip.names().into_iter().map(|n| n.trim_end_matches(".npy").to_string()).collect()
    }

    /// Reads a whole entry.
    pub fn read(&mut self, name: &str) -> Result<NpyArray, DataError> {
        let what = format!("{}:{name}.npy", self.zip.what());
        let file = format!("{name}.npy");
        self.zip.with_member(Which::Name(&file), |m| read_array(m.reader, m.size, &what))
    }

    /// Streams a `|b1`/`|u1` entry in chunks of `chunk` elements: `f(chunk_index, bytes)`.
    pub fn stream_bytes(
        &mut self,
        name: &str,
        chunk: usize,
        mut f: impl FnMut(usize, &[u8]),
    ) -> Result<NpyHeader, DataError> {
        let what = format!("{}:{name}.npy", self.zip.what());
        let file = format!("{name}.npy");
        self.zip.with_member(Which::Name(&file), |m| {
            let e = m.reader;
            let (header, header_len) = read_header(e, &what)?;
            if header.dtype.size() != 1 {
                return Err(DataError::Format { path: what, reason: format!("expected a bool/uint8 array, got {:?}", header.dtype) });
            }
            header.check_available(m.size.saturating_sub(header_len), &what)?;
            let total = header.len();
            if chunk == 0 || total % chunk != 0 {
                return Err(DataError::Format { path: what, reason: format!("shape {:?} is not a whole number of {chunk}-pixel images", header.shape) });
            }
            let mut buf = vec![0u8; chunk];
            for i in 0..total / chunk {
                e.read_exact(&mut buf).map_err(|err| DataError::Format {
                    path: what.clone(),
                    reason: format!("truncated data: image {i} of {} of shape {:?}: {err}", total / chunk, header.shape),
                })?;
                f(i, &buf);
            }
            Ok(header)
        })
    }
}

/// Writes a `<i8` `.npy` array (C order) atomically (temp file + rename).
pub fn write_npy_i64(path: &Path, shape: &[usize], data: &[i64]) -> Result<(), DataError> {
    write_npy_raw(path, "<i8", shape, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

/// Writes a `<f8` `.npy` array (C order) atomically (temp file + rename).
pub fn write_npy_f64(path: &Path, shape: &[usize], data: &[f64]) -> Result<(), DataError> {
    write_npy_raw(path, "<f8", shape, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

/// Writes a `<f4` `.npy` array (C order) atomically (temp file + rename).
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    write_npy_raw(path, "<f4", shape, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

fn write_npy_raw(path: &Path, descr: &str, shape: &[usize], payload: &[u8]) -> Result<(), DataError> {
    let shape_s = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + payload.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(payload);
    super::write_atomic(path, &bytes)
}

/// `write_all` helper used by atomic writers.
pub(crate) fn write_all(f: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    f.write_all(bytes)?;
    f.sync_all()
}
