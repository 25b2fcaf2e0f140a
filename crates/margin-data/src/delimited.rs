//! Numeric CSV/TSV files (optionally gzip-compressed): one integer label column plus
//! feature columns, parsed by the `csv` crate (quoting, escaped quotes, CRLF) with the
//! options of [`CsvOptions`] — never by splitting lines by hand.
//!
//! The rules, each stated once:
//! - **Delimiter** `,` unless set (`delimiter = "\t"` for TSV, `";"` …): one ASCII byte.
//! - **Quoting** on by default (`"1,5"` is one cell); off (`quoting = false`) for files
//!   such as STS-B's TSV, whose text cells hold unbalanced `"`.
//! - **Header**: `header = "auto"` (default) — the first row is a header when one of its
//!   cells is not a number, and only the first row can be; `true` — the first row is
//!   always a header; `false` — there is none. Every other row is data: a row that does
//!   not parse is an error naming its line and column, never dropped.
//! - A UTF-8 byte-order mark is stripped; blank lines (every cell empty) are skipped;
//!   cells are trimmed of surrounding spaces.
//! - **Labels** must be exact integers in `i64`: `3`, or `3.0` (as pandas writes float
//!   columns); `1e300`, `1e3` or `2.5` is an error with line and column.
//! - **Features** must be finite as `f32` (`nan`, `inf` and `1e300` are errors with line
//!   and column, never a silent NaN or infinity).
//! - A gzip stream (detected by its magic bytes) may decompress to at most
//!   [`MAX_MEMBER_BYTES`]; its decoder runs inside [`guarded`].

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_MEMBER_BYTES, guarded};
use crate::{DataError, Dataset};

/// Whether the first row is a header (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "HeaderRepr", into = "HeaderRepr")]
pub enum CsvHeader {
    /// The first row is a header when one of its cells is not a number.
    #[default]
    Auto,
    /// The first row is always a header.
    Yes,
    /// There is no header row.
    No,
}

/// The configuration spelling of [`CsvHeader`]: `"auto"`, `true` or `false`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum HeaderRepr {
    Flag(bool),
    Word(String),
}

impl TryFrom<HeaderRepr> for CsvHeader {
    type Error = String;
    fn try_from(r: HeaderRepr) -> Result<Self, String> {
        match r {
            HeaderRepr::Flag(true) => Ok(CsvHeader::Yes),
            HeaderRepr::Flag(false) => Ok(CsvHeader::No),
            HeaderRepr::Word(w) if w == "auto" => Ok(CsvHeader::Auto),
            HeaderRepr::Word(w) => Err(format!("header = {w:?}: expected \"auto\", true or false")),
        }
    }
}

impl From<CsvHeader> for HeaderRepr {
    fn from(h: CsvHeader) -> Self {
        match h {
            CsvHeader::Auto => HeaderRepr::Word("auto".into()),
            CsvHeader::Yes => HeaderRepr::Flag(true),
            CsvHeader::No => HeaderRepr::Flag(false),
        }
    }
}

/// How a CSV/TSV file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// Label column; negative counts from the end (−1: the last).
    pub label_column: i64,
    /// Cell separator (one ASCII byte; default `,`).
    pub delimiter: u8,
    /// Whether `"` quotes cells (default true).
    pub quoting: bool,
    /// The header rule (default [`CsvHeader::Auto`]).
    pub header: CsvHeader,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { label_column: -1, delimiter: b',', quoting: true, header: CsvHeader::Auto }
    }
}

/// Checks a configured delimiter (`field` names the setting): one ASCII byte that is not
/// a quote or a line break.
pub fn parse_delimiter(s: &str, field: &'static str) -> Result<u8, DataError> {
    match s.as_bytes() {
        [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => Ok(*b),
        _ => Err(DataError::Config { field, value: format!("{s:?}"), reason: "must be one ASCII character other than a quote or a line break (\"\\t\" for TSV)" }),
    }
}

/// Loads a CSV with the default options and label column `label_column`.
pub fn load_csv(path: &Path, label_column: i64) -> Result<Dataset, DataError> {
    load_csv_with(path, &CsvOptions { label_column, ..CsvOptions::default() })
}

/// Loads a CSV/TSV (or `.gz` of one) file.
pub fn load_csv_with(path: &Path, o: &CsvOptions) -> Result<Dataset, DataError> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    read_csv(f, &path.display().to_string(), o)
}

/// Reads CSV/TSV bytes held in memory (`what` names them in errors).
pub fn csv_from_bytes(bytes: &[u8], what: &str, o: &CsvOptions) -> Result<Dataset, DataError> {
    read_csv(bytes, what, o)
}

/// A reader that fails once more than `left` bytes came through (a gzip bomb).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| std::io::Error::other(format!("decompresses to more than {MAX_MEMBER_BYTES} bytes (margin's cap)")))?;
        Ok(n)
    }
}

/// Reads a CSV/TSV stream (gzip-compressed or not).
pub fn read_csv(r: impl Read, what: &str, o: &CsvOptions) -> Result<Dataset, DataError> {
    guarded(what, || {
        let mut r = BufReader::new(r);
        let gz = r.fill_buf().map_err(|e| bad(what, format!("cannot read: {e}")))?.starts_with(&[0x1f, 0x8b]);
        if gz {
            let dec = flate2::read::GzDecoder::new(r);
            parse(BufReader::new(Capped { inner: dec, left: MAX_MEMBER_BYTES }), what, o)
        } else {
            parse(r, what, o)
        }
    })
}

fn bad(what: &str, reason: String) -> DataError {
    DataError::Format { path: what.to_string(), reason }
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}

/// A label cell as an exact integer: an `i64`, optionally followed by `.` and zeros.
fn label(cell: &str) -> Option<i64> {
    let int = match cell.split_once('.') {
        Some((i, frac)) if frac.bytes().all(|b| b == b'0') => i,
        Some(_) => return None,
        None => cell,
    };
    int.parse::<i64>().ok()
}

fn parse(mut r: impl BufRead, what: &str, o: &CsvOptions) -> Result<Dataset, DataError> {
    // The byte-order mark, if any (Excel writes one).
    if r.fill_buf().map_err(|e| bad(what, format!("cannot read: {e}")))?.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    let mut rd = csv::ReaderBuilder::new()
        .delimiter(o.delimiter)
        .quoting(o.quoting)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(r);
    let sep = if o.delimiter == b'\t' { "\\t".to_string() } else { (o.delimiter as char).to_string() };
    let mut width: Option<usize> = None;
    let mut first = true;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match rd.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
                return Err(bad(what, format!("{line}not readable as delimited text: {e}")));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        if std::mem::take(&mut first) {
            let header = match o.header {
                CsvHeader::Yes => true,
                CsvHeader::No => false,
                CsvHeader::Auto => !record.iter().all(is_number),
            };
            if header {
                if record.len() < 2 {
                    return Err(bad(what, format!("line {line}: a header of 1 column; a label and at least one feature are needed (is the delimiter {sep:?} right?)")));
                }
                width = Some(record.len());
                continue;
            }
        }
        let w = *width.get_or_insert(record.len());
        if record.len() != w {
            return Err(bad(what, format!("line {line}: {} columns, expected {w} like the first row (delimiter {sep:?})", record.len())));
        }
        if w < 2 {
            return Err(bad(what, format!("line {line}: 1 column; a label and at least one feature are needed (is the delimiter {sep:?} right?)")));
        }
        let lc = if o.label_column < 0 { w as i64 + o.label_column } else { o.label_column };
        if lc < 0 || lc >= w as i64 {
            return Err(bad(what, format!("label column {} is outside the {w} columns", o.label_column)));
        }
        let lc = lc as usize;
        for (c, cell) in record.iter().enumerate() {
            if c == lc {
                let l = label(cell).ok_or_else(|| bad(what, format!("line {line}, column {}: label {cell:.40?} is not an exact integer", c + 1)))?;
                labels.push(l);
                continue;
            }
            let v: f64 = cell.parse().map_err(|_| bad(what, format!("line {line}, column {}: {cell:.40?} is not a number", c + 1)))?;
            let x = v as f32;
            if !x.is_finite() {
                return Err(bad(what, format!("line {line}, column {}: {cell:.40?} is not a finite 32-bit float", c + 1)));
            }
            features.push(x);
        }
    }
    let Some(w) = width.filter(|_| !labels.is_empty()) else {
        return Err(bad(what, "no data rows".into()));
    };
    Dataset::new(what.to_string(), features, vec![w - 1], labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, o: &CsvOptions) -> Result<Dataset, String> {
        csv_from_bytes(text.as_bytes(), "t.csv", o).map_err(|e| e.to_string())
    }

    fn ok(text: &str) -> Dataset {
        read(text, &CsvOptions::default()).unwrap()
    }

    #[test]
    fn header_rule_bom_quotes_and_blank_lines() {
        let d = ok("\u{feff}a,b,label\n1,2,0\n\n3,4,1\n");
        assert_eq!((d.features.clone(), d.labels.clone()), (vec![1., 2., 3., 4.], vec![0, 1]));
        // Before: the BOM made the first data row a "header" and dropped it.
        assert_eq!(ok("\u{feff}1,2,0\n3,4,1\n").len(), 2);
        // Quoted numeric cells are numbers (before: the row was taken for a header).
        assert_eq!(ok("\"1\",\"2\",0\r\n3,4,\"1\"\r\n").len(), 2);
        // header = false keeps a numeric-looking first row; true drops it.
        let no = CsvOptions { header: CsvHeader::No, ..CsvOptions::default() };
        let yes = CsvOptions { header: CsvHeader::Yes, ..CsvOptions::default() };
        assert_eq!(read("1,2,0\n3,4,1\n", &no).unwrap().len(), 2);
        assert_eq!(read("1,2,0\n3,4,1\n", &yes).unwrap().len(), 1);
        let e = read("a,b,c\n1,2,0\n", &no).unwrap_err();
        assert!(e.contains("t.csv") && e.contains("line 1, column 1") && e.contains("not a number"), "{e}");
    }

    /// Before: a non-numeric row after the first was an error only if a data row had been
    /// seen — a file of several such rows lost them all, silently.
    #[test]
    fn only_the_first_row_can_be_a_header() {
        let e = read("a,b,label\nx,y,z\n1,2,0\n", &CsvOptions::default()).unwrap_err();
        assert!(e.contains("line 2, column 1") && e.contains("\"x\""), "{e}");
        let e = read("1,2,0\n3,zz,1\n", &CsvOptions::default()).unwrap_err();
        assert!(e.contains("line 2, column 2"), "{e}");
    }

    #[test]
    fn semicolons_need_the_delimiter() {
        let e = read("1;2;0\n3;4;1\n", &CsvOptions::default()).unwrap_err();
        assert!(e.contains("line 1") && e.contains("1 column") && e.contains("delimiter"), "{e}");
        let semi = CsvOptions { delimiter: parse_delimiter(";", "data.delimiter").unwrap(), ..CsvOptions::default() };
        assert_eq!(read("1;2;0\n3;4;1\n", &semi).unwrap().len(), 2);
        assert!(parse_delimiter("ab", "data.delimiter").unwrap_err().to_string().contains("data.delimiter"));
    }

    #[test]
    fn tsv_without_quoting() {
        let tsv = "\"hi\tx\tlabel\n1\t2\t0\n3\t4\t1\n";
        let o = CsvOptions { delimiter: b'\t', quoting: false, ..CsvOptions::default() };
        assert_eq!(read(tsv, &o).unwrap().len(), 2);
        // With quoting on, the unbalanced quote swallows the rest of the file.
        let q = CsvOptions { quoting: true, ..o.clone() };
        assert!(read(tsv, &q).is_err());
    }

    #[test]
    fn labels_are_exact_integers_and_features_finite() {
        assert_eq!(ok("1,2,3.0\n").label_names(), vec!["3"]);
        for (cell, col) in [("1e300", 3), ("2.5", 3), ("1e3", 3), ("9223372036854775808", 3), (".", 3)] {
            let e = read(&format!("1,2,0\n1,2,{cell}\n"), &CsvOptions::default()).unwrap_err();
            assert!(e.contains(&format!("line 2, column {col}")) && e.contains("exact integer"), "{cell}: {e}");
        }
        for cell in ["nan", "inf", "1e300"] {
            let e = read(&format!("1,2,0\n1,{cell},0\n"), &CsvOptions::default()).unwrap_err();
            assert!(e.contains("line 2, column 2") && e.contains("finite"), "{cell}: {e}");
        }
        assert_eq!(ok("5,1,2,-9223372036854775808\n").label_names(), vec![i64::MIN.to_string()]);
    }

    #[test]
    fn empty_files_say_no_data_rows() {
        for text in ["", "a,b,label\n", "\n\n"] {
            let e = read(text, &CsvOptions::default()).unwrap_err();
            assert!(e.contains("t.csv") && e.contains("no data rows"), "{text:?}: {e}");
        }
        let e = read("1,2,0\n1,2\n", &CsvOptions::default()).unwrap_err();
        assert!(e.contains("line 2: 2 columns, expected 3"), "{e}");
    }

    #[test]
    fn gzip_is_read() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"x,y,label\n1,2,0\n").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(csv_from_bytes(&gz, "t.csv.gz", &CsvOptions::default()).unwrap().len(), 1);
        let e = csv_from_bytes(&gz[..gz.len() - 9], "t.csv.gz", &CsvOptions::default()).unwrap_err().to_string();
        assert!(e.contains("t.csv.gz"), "{e}");
    }
}
