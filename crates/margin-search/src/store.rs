//! Vector storage at one of three precisions, and the key (smaller is closer) of a query
//! against a stored row.
//!
//! - **f32**: rows as given (unit rows for cosine). Euclidean keys are `Σ (q − r)²`.
//! - **f16**: half the memory; values beyond f16's range (|x| > 65504) are refused naming the
//!   row and column, never stored as ∞.
//! - **i8**: a quarter of the memory plus one `f32` scale per row: `r ≈ s·c`, `s = max|r|/127`,
//!   `c = round(r/s)`. A per-*vector* scale cannot saturate, whatever the data's range: each
//!   row's own largest value maps to ±127 (a fixed `×127` conversion clamps every value past 1,
//!   which on unnormalised L2 data — clustered data here has |x| up to ~8 — flattens most of the
//!   row). Per-dimension scales learned at build time would saturate again on rows added later
//!   outside the build's range, and the per-row scale costs 4 bytes per 128.
//!
//! Quantised rows are compared asymmetrically: the query stays f32, the key is computed from
//! `q·r̃` (one dot product against the code, times the scale) and, for Euclidean, the stored
//! `‖r̃‖²` of the dequantised row: `‖q‖² − 2 q·r̃ + ‖r̃‖²`.

use crate::error::{Result, SearchError, invalid};
use crate::kernels;
use crate::metric::{Metric, normalise, normalises};

/// Storage precision of the vectors in an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// 4 bytes per value.
    #[default]
    F32,
    /// 2 bytes per value (IEEE half).
    F16,
    /// 1 byte per value plus a 4-byte scale per row.
    I8,
}

impl Precision {
    /// All precisions.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::I8];

    /// `f32`, `f16` or `i8`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::I8 => "i8",
        }
    }

    /// Parses [`Precision::name`].
    ///
    /// # Errors
    /// [`SearchError::InvalidParameter`] naming the accepted names.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s.to_ascii_lowercase()).ok_or_else(|| invalid("precision", format!("{s:?} (expected f32, f16 or i8)")))
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Precision::F32 => 0,
            Precision::F16 => 1,
            Precision::I8 => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == c)
    }

    /// Bytes per stored value.
    pub fn value_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
            Precision::I8 => 1,
        }
    }
}

/// The stored rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Codes {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    I8 { codes: Vec<i8>, scales: Vec<f32> },
}

/// A query prepared for [`Store::key`]: unit for cosine, with its squared norm.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub v: Vec<f32>,
    pub sq: f32,
}

/// Rows of one dimension, metric and precision, addressed by slot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Store {
    pub metric: Metric,
    pub dim: usize,
    pub codes: Codes,
    /// `‖r̃‖²` per row, for Euclidean metrics on quantised rows (else empty).
    pub norms: Vec<f32>,
}

/// Checks `data` as rows of `dim` under the workspace's one rule for usable rows
/// (`margin_linalg::rows`); returns the row count.
pub(crate) fn check_rows(input: &str, data: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(SearchError::Empty { input: input.into(), what: "dimension is 0".into() });
    }
    if data.is_empty() {
        return Err(SearchError::Empty { input: input.into(), what: "no rows".into() });
    }
    if !data.len().is_multiple_of(dim) {
        return Err(SearchError::Shape { input: input.into(), len: data.len(), dim });
    }
    match margin_linalg::rows::first_bad_row(data, dim) {
        Some(margin_linalg::rows::RowFault::NonFinite { row, col, value }) => Err(SearchError::NonFinite { input: input.into(), row, column: col, value }),
        Some(margin_linalg::rows::RowFault::Overflow { row, max_abs }) => Err(SearchError::Overflow { input: input.into(), row, max_abs }),
        None => Ok(data.len() / dim),
    }
}

impl Store {
    pub fn new(metric: Metric, dim: usize, precision: Precision) -> Self {
        let codes = match precision {
            Precision::F32 => Codes::F32(Vec::new()),
            Precision::F16 => Codes::F16(Vec::new()),
            Precision::I8 => Codes::I8 { codes: Vec::new(), scales: Vec::new() },
        };
        Self { metric, dim, codes, norms: Vec::new() }
    }

    pub fn precision(&self) -> Precision {
        match self.codes {
            Codes::F32(_) => Precision::F32,
            Codes::F16(_) => Precision::F16,
            Codes::I8 { .. } => Precision::I8,
        }
    }

    pub fn len(&self) -> usize {
        let values = match &self.codes {
            Codes::F32(v) => v.len(),
            Codes::F16(v) => v.len(),
            Codes::I8 { codes, .. } => codes.len(),
        };
        values / self.dim.max(1)
    }

    fn keeps_norms(&self) -> bool {
        matches!(self.metric, Metric::Euclidean | Metric::SquaredEuclidean) && self.precision() != Precision::F32
    }

    /// Bytes held by the rows (and their scales and norms).
    pub fn bytes(&self) -> usize {
        let extra = match &self.codes {
            Codes::I8 { scales, .. } => scales.len() * 4,
            _ => 0,
        };
        self.len() * self.dim * self.precision().value_bytes() + extra + self.norms.len() * 4
    }

    /// Appends validated rows (see [`check_rows`]): normalised for cosine, then encoded.
    ///
    /// # Errors
    /// [`SearchError::OutOfRange`] for an f16 value beyond ±65504 (nothing is appended).
    pub fn push_rows(&mut self, input: &str, data: &[f32]) -> Result<()> {
        let dim = self.dim;
        let mut rows: std::borrow::Cow<[f32]> = std::borrow::Cow::Borrowed(data);
        if normalises(self.metric) {
            let mut owned = data.to_vec();
            owned.chunks_exact_mut(dim).for_each(normalise);
            rows = std::borrow::Cow::Owned(owned);
        }
        if let Codes::F16(_) = self.codes
            && let Some(i) = rows.iter().position(|v| v.abs() > f32::from(half::f16::MAX))
        {
            return Err(SearchError::OutOfRange { input: input.into(), row: i / dim, column: i % dim, value: f64::from(rows[i]), precision: "f16" });
        }
        let keep_norms = self.keeps_norms();
        let start = self.len();
        match &mut self.codes {
            Codes::F32(v) => {
                crate::hugepages::reserve(v, rows.len());
                v.extend_from_slice(&rows)
            }
            Codes::F16(v) => {
                crate::hugepages::reserve(v, rows.len());
                v.extend(rows.iter().map(|&x| half::f16::from_f32(x)))
            }
            Codes::I8 { codes, scales } => {
                crate::hugepages::reserve(codes, rows.len());
                for row in rows.chunks_exact(dim) {
                    let max_abs = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let scale = max_abs / 127.0;
                    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                    codes.extend(row.iter().map(|&x| (x * inv).round().clamp(-127.0, 127.0) as i8));
                    scales.push(scale);
                }
            }
        }
        if keep_norms {
            let mut buf = vec![0f32; dim];
            for j in start..self.len() {
                self.decode(j, &mut buf);
                self.norms.push(kernels::dot(&buf, &buf));
            }
        }
        Ok(())
    }

    /// Recomputes the norms after loading the codes from a file.
    pub fn rebuild_norms(&mut self) {
        self.norms.clear();
        if self.keeps_norms() {
            let mut buf = vec![0f32; self.dim];
            for j in 0..self.len() {
                self.decode(j, &mut buf);
                self.norms.push(kernels::dot(&buf, &buf));
            }
        }
    }

    /// Row `j` as f32 (dequantised).
    pub fn decode(&self, j: usize, out: &mut [f32]) {
        let d = self.dim;
        match &self.codes {
            Codes::F32(v) => out.copy_from_slice(&v[j * d..(j + 1) * d]),
            Codes::F16(v) => {
                use half::slice::HalfFloatSliceExt;
                v[j * d..(j + 1) * d].convert_to_f32_slice(out)
            }
            Codes::I8 { codes, scales } => {
                let s = scales[j];
                for (o, &c) in out.iter_mut().zip(&codes[j * d..(j + 1) * d]) {
                    *o = s * f32::from(c);
                }
            }
        }
    }

    /// Prepares `q` (validated, `dim` long) into `out` without allocating once `out` has grown.
    pub fn prepare(&self, q: &[f32], out: &mut Query) {
        out.v.clear();
        out.v.extend_from_slice(q);
        if normalises(self.metric) {
            normalise(&mut out.v);
        }
        out.sq = kernels::dot(&out.v, &out.v);
    }

    /// Prepares stored row `j` as a query (for the graph's item-to-item keys).
    pub fn prepare_row(&self, j: usize, out: &mut Query) {
        out.v.resize(self.dim, 0.0);
        self.decode(j, &mut out.v);
        out.sq = kernels::dot(&out.v, &out.v);
    }

    /// The key between stored f32 rows `a` and `b` without preparing either (`None` for
    /// quantised storage, which prepares one row as a query instead).
    #[inline]
    pub fn pair_key_f32(&self, a: usize, b: usize) -> Option<f32> {
        let d = self.dim;
        let Codes::F32(v) = &self.codes else { return None };
        let (ra, rb) = (&v[a * d..(a + 1) * d], &v[b * d..(b + 1) * d]);
        Some(match self.metric {
            Metric::Euclidean | Metric::SquaredEuclidean => kernels::l2sq(ra, rb),
            Metric::Cosine => 1.0 - kernels::dot(ra, rb),
            Metric::Dot => -kernels::dot(ra, rb),
        })
    }

    /// The key (smaller is closer) of `q` against row `j`.
    #[inline]
    pub fn key(&self, q: &Query, j: usize) -> f32 {
        let d = self.dim;
        let ip = match &self.codes {
            Codes::F32(v) => {
                let r = &v[j * d..(j + 1) * d];
                match self.metric {
                    Metric::Euclidean | Metric::SquaredEuclidean => return kernels::l2sq(&q.v, r),
                    _ => kernels::dot(&q.v, r),
                }
            }
            Codes::F16(v) => kernels::dot_f16(&q.v, &v[j * d..(j + 1) * d]),
            Codes::I8 { codes, scales } => scales[j] * kernels::dot_i8(&q.v, &codes[j * d..(j + 1) * d]),
        };
        match self.metric {
            Metric::Euclidean | Metric::SquaredEuclidean => q.sq - 2.0 * ip + self.norms[j],
            Metric::Cosine => 1.0 - ip,
            Metric::Dot => -ip,
        }
    }

    /// Starts loading row `j` into cache.
    #[inline(always)]
    pub fn prefetch(&self, j: usize) {
        let d = self.dim;
        match &self.codes {
            Codes::F32(v) => kernels::prefetch(&v[j * d..(j + 1) * d]),
            Codes::F16(v) => kernels::prefetch(&v[j * d..(j + 1) * d]),
            Codes::I8 { codes, .. } => kernels::prefetch(&codes[j * d..(j + 1) * d]),
        }
    }

    /// The f32 rows, when stored as f32.
    pub fn f32_rows(&self) -> Option<&[f32]> {
        match &self.codes {
            Codes::F32(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each precision's key equals the metric's distance computed on the dequantised row in
    /// f64 (the slow reference), and i8 does not saturate on rows far beyond ±1.
    #[test]
    fn keys_match_reference_at_every_precision() {
        let dim = 37;
        let rows: Vec<f32> = (0..5 * dim).map(|i| (i as f32 * 0.71).sin() * 9.0).collect();
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.3).cos() * 4.0).collect();
        for metric in Metric::ALL {
            for p in Precision::ALL {
                let mut s = Store::new(metric, dim, p);
                s.push_rows("rows", &rows).unwrap();
                let mut pq = Query::default();
                s.prepare(&q, &mut pq);
                let mut r = vec![0f32; dim];
                for j in 0..5 {
                    s.decode(j, &mut r);
                    let want = match metric {
                        Metric::Euclidean | Metric::SquaredEuclidean => Metric::SquaredEuclidean.between(&q, &r),
                        Metric::Cosine => Metric::Cosine.between(&q, &r),
                        Metric::Dot => -Metric::Dot.between(&q, &r),
                    };
                    let got = f64::from(s.key(&pq, j));
                    assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "{metric} {p:?} row {j}: {got} vs {want}");
                    let orig = &rows[j * dim..(j + 1) * dim];
                    let step = if p == Precision::I8 { 9.0 / 127.0 } else { 0.01 };
                    if metric != Metric::Cosine {
                        let err = orig.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                        assert!(err <= step, "{metric} {p:?} row {j}: dequantisation error {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn f16_range_and_bad_rows_are_errors() {
        let mut s = Store::new(Metric::Euclidean, 2, Precision::F16);
        let e = s.push_rows("G.npy", &[1.0, 2.0, 7e4, 0.0]).unwrap_err().to_string();
        assert_eq!(e, "G.npy: row 1, column 0 is 70000, beyond f16's range (store the index as f32 or i8)");
        assert_eq!(s.len(), 0);
        let e = check_rows("G.npy", &[1.0, f32::NAN], 2).unwrap_err().to_string();
        assert_eq!(e, "G.npy: row 0, column 1 is NaN (all values must be finite)");
        assert!(check_rows("G.npy", &[], 2).unwrap_err().to_string().contains("G.npy is empty"));
        assert!(check_rows("G.npy", &[1.0; 3], 2).unwrap_err().to_string().contains("3 values cannot be split"));
        assert!(check_rows("G.npy", &[3e20, 1.0], 2).unwrap_err().to_string().contains("row 0 is too large"));
        assert_eq!(Precision::parse("I8").unwrap(), Precision::I8);
        assert!(Precision::parse("q4").unwrap_err().to_string().contains("expected f32, f16 or i8"));
    }
}
