//! Tables of text with named columns: labelled utterances (text + label, e.g. BANKING77's
//! `text,category` CSV) and pairs for pair losses (anchor, positive[, negative]).
//!
//! Formats: CSV/TSV read by the `csv` crate with [`crate::delimited`]'s delimiter and
//! quoting options (quoting off for files such as STS-B's whose text holds unbalanced
//! `"`); the first row is always the header that names the columns. JSON Lines: one
//! object per line, fields by name (a label may be a JSON string or integer).
//!
//! The rules: the whole file must be UTF-8 (else the line of the first bad byte); a
//! named column that the header lacks is an error listing the columns there are; a row
//! without that cell, or whose text or label cell is empty (after trimming spaces), is an
//! error naming the file, the line and the field — never a dropped row or an empty class.
//! Blank lines are skipped. Texts are kept as written; labels are trimmed.

use std::path::Path;

use super::items::{kind, split_lines};
use super::{TextSet, bad, read_bytes, utf8};
use crate::DataError;

/// How a table file is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFormat {
    /// CSV/TSV with a header row.
    Delimited {
        /// Cell separator (`b','`, `b'\t'`).
        delimiter: u8,
        /// Whether `"` quotes cells.
        quoting: bool,
    },
    /// One JSON object per line.
    JsonLines,
}

impl TableFormat {
    /// The format a file's extension implies: `.jsonl` → JSON Lines, `.tsv` → tab-separated
    /// with quoting on, anything else comma-separated with quoting on.
    pub fn for_path(path: &Path) -> TableFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson") => TableFormat::JsonLines,
            Some("tsv") => TableFormat::Delimited { delimiter: b'\t', quoting: true },
            _ => TableFormat::Delimited { delimiter: b',', quoting: true },
        }
    }
}

/// The columns of a labelled text table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextColumns {
    /// The text column (`"text"`).
    pub text: String,
    /// The label column (`"label"`, BANKING77: `"category"`).
    pub label: String,
}

/// The columns of a pair table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairColumns {
    /// The anchor column.
    pub anchor: String,
    /// The positive column.
    pub positive: String,
    /// The negative column, if the file has hard negatives.
    pub negative: Option<String>,
}

/// (anchor, positive[, negative]) text pairs, for in-batch-negative pair losses.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSet {
    /// The file, for messages.
    pub name: String,
    /// Anchors.
    pub anchors: Vec<String>,
    /// Positives (same length).
    pub positives: Vec<String>,
    /// Negatives (same length), when the file names a negative column.
    pub negatives: Option<Vec<String>>,
    /// The 1-based line of each pair.
    pub lines: Vec<usize>,
}

/// Reads a labelled text table (class table: the sorted distinct labels).
pub fn load_labelled(path: &Path, format: &TableFormat, columns: &TextColumns) -> Result<TextSet, DataError> {
    parse_labelled(&read_bytes(path)?, &path.display().to_string(), format, columns)
}

/// [`load_labelled`] from bytes (`what` names them in errors).
pub fn parse_labelled(bytes: &[u8], what: &str, format: &TableFormat, columns: &TextColumns) -> Result<TextSet, DataError> {
    let rows = rows(bytes, what, format, &[&columns.text, &columns.label])?;
    Ok(TextSet::from_rows(what, rows.into_iter().map(|(l, mut c)| (l, std::mem::take(&mut c[0]), c[1].trim().to_string())).collect()))
}

/// Reads a pair table.
pub fn load_pairs(path: &Path, format: &TableFormat, columns: &PairColumns) -> Result<PairSet, DataError> {
    parse_pairs(&read_bytes(path)?, &path.display().to_string(), format, columns)
}

/// [`load_pairs`] from bytes.
pub fn parse_pairs(bytes: &[u8], what: &str, format: &TableFormat, columns: &PairColumns) -> Result<PairSet, DataError> {
    let mut fields = vec![columns.anchor.as_str(), columns.positive.as_str()];
    fields.extend(columns.negative.as_deref());
    let rows = rows(bytes, what, format, &fields)?;
    let mut p = PairSet { name: what.into(), anchors: vec![], positives: vec![], negatives: columns.negative.as_ref().map(|_| vec![]), lines: vec![] };
    for (line, mut c) in rows {
        p.lines.push(line);
        p.anchors.push(std::mem::take(&mut c[0]));
        p.positives.push(std::mem::take(&mut c[1]));
        if let Some(n) = &mut p.negatives {
            n.push(std::mem::take(&mut c[2]));
        }
    }
    Ok(p)
}

/// The named fields of every row, `(line, cells in the order of fields)`; every cell
/// non-empty.
fn rows(bytes: &[u8], what: &str, format: &TableFormat, fields: &[&str]) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let text = utf8(bytes, what)?;
    let out = match format {
        TableFormat::Delimited { delimiter, quoting } => delimited_rows(text, what, *delimiter, *quoting, fields)?,
        TableFormat::JsonLines => json_rows(text, what, fields)?,
    };
    if out.is_empty() {
        return Err(bad(what, "no data rows".into()));
    }
    Ok(out)
}

fn check_cell(what: &str, line: usize, field: &str, cell: &str) -> Result<(), DataError> {
    if cell.trim().is_empty() {
        return Err(bad(what, format!("line {line}, field {field:?}: empty cell (every row needs a {field})")));
    }
    Ok(())
}

fn delimited_rows(text: &str, what: &str, delimiter: u8, quoting: bool, fields: &[&str]) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let mut rd = csv::ReaderBuilder::new().delimiter(delimiter).quoting(quoting).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut columns: Option<Vec<usize>> = None;
    let mut out = Vec::new();
    loop {
        match rd.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
                return Err(bad(what, format!("{line}not readable as delimited text: {e}")));
            }
        }
        let line = record.position().map_or(0, |p| p.line()) as usize;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(cols) = &columns else {
            let header: Vec<&str> = record.iter().map(str::trim).collect();
            let idx = fields
                .iter()
                .map(|f| {
                    header.iter().position(|h| h == f).ok_or_else(|| {
                        bad(what, format!("line {line}: no column {f:?} in the header (columns: {header:?}; is the delimiter {:?} right?)", delimiter as char))
                    })
                })
                .collect::<Result<_, _>>()?;
            columns = Some(idx);
            continue;
        };
        let cells = cols
            .iter()
            .zip(fields)
            .map(|(&c, f)| {
                let cell = record.get(c).ok_or_else(|| bad(what, format!("line {line}, field {f:?}: the row has {} cells, the header names it as column {}", record.len(), c + 1)))?;
                check_cell(what, line, f, cell)?;
                Ok(cell.to_string())
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        out.push((line, cells));
    }
    if columns.is_none() {
        return Err(bad(what, "no header row (the file is empty)".into()));
    }
    Ok(out)
}

fn json_rows(text: &str, what: &str, fields: &[&str]) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let mut out = Vec::new();
    for (line, l) in split_lines(text) {
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l).map_err(|e| bad(what, format!("line {line}: not JSON: {e}")))?;
        let serde_json::Value::Object(o) = v else {
            return Err(bad(what, format!("line {line}: a JSON {} where an object with fields {fields:?} was expected", kind(&v))));
        };
        let cells = fields
            .iter()
            .map(|f| {
                let cell = match o.get(*f) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                    Some(v) => return Err(bad(what, format!("line {line}, field {f:?}: a JSON {}, not a string", kind(v)))),
                    None => return Err(bad(what, format!("line {line}: no field {f:?} (fields: {:?})", o.keys().take(8).collect::<Vec<_>>()))),
                };
                check_cell(what, line, f, &cell)?;
                Ok(cell)
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        out.push((line, cells));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Samples;

    fn cols(text: &str, label: &str) -> TextColumns {
        TextColumns { text: text.into(), label: label.into() }
    }
    const CSV: TableFormat = TableFormat::Delimited { delimiter: b',', quoting: true };

    #[test]
    fn labelled_csv_tsv_and_jsonl() {
        let t = parse_labelled(b"text,category\n\"Hi, there\",greet\nbye,leave \n\n", "b.csv", &CSV, &cols("text", "category")).unwrap();
        assert_eq!(t.texts(), ["Hi, there", "bye"]);
        assert_eq!(t.class_name(t.label(1)), "leave");
        assert_eq!(t.sample_id(1), "b.csv:3");
        let tsv = TableFormat::Delimited { delimiter: b'\t', quoting: false };
        let t = parse_labelled(b"label\ttext\nq\t\"unbalanced\n", "x.tsv", &tsv, &cols("text", "label")).unwrap();
        assert_eq!(t.texts(), ["\"unbalanced"]);
        let t = parse_labelled(b"{\"text\": \"a\\nb\", \"label\": 3}\n", "x.jsonl", &TableFormat::JsonLines, &cols("text", "label")).unwrap();
        assert_eq!((t.text(0), t.class_name(0)), ("a\nb", "3".into()));
    }

    #[test]
    fn bad_tables_name_file_line_and_field() {
        let c = cols("text", "category");
        for (input, fmt, words) in [
            (&b"text,label\na,b\n"[..], &CSV, vec!["no column \"category\"", "[\"text\", \"label\"]"]),
            (b"text,category\na,x\n ,y\n", &CSV, vec!["line 3", "field \"text\"", "empty cell"]),
            (b"text,category\na,\n", &CSV, vec!["line 2", "field \"category\"", "empty"]),
            (b"text,category\na\n", &CSV, vec!["line 2", "field \"category\"", "1 cells"]),
            (b"text,category\na,\xff\n", &CSV, vec!["line 2", "not UTF-8"]),
            (b"text,category\n", &CSV, vec!["no data rows"]),
            (b"", &CSV, vec!["no header"]),
            (b"{\"text\": \"a\"}\n", &TableFormat::JsonLines, vec!["line 1", "no field \"category\""]),
            (b"{\"text\": \"a\", \"category\": [1]}\n", &TableFormat::JsonLines, vec!["field \"category\"", "array"]),
        ] {
            let e = parse_labelled(input, "t.csv", fmt, &c).unwrap_err().to_string();
            assert!(e.contains("t.csv") && words.iter().all(|w| e.contains(w)), "{e} lacks {words:?}");
        }
    }

    #[test]
    fn pairs_with_and_without_negatives() {
        let pc = PairColumns { anchor: "q".into(), positive: "p".into(), negative: None };
        let p = parse_pairs(b"q,p,n\na,b,c\nd,e,f\n", "p.csv", &CSV, &pc).unwrap();
        assert_eq!((p.anchors.clone(), p.positives.clone(), p.negatives.clone()), (vec!["a".into(), "d".into()], vec!["b".into(), "e".into()], None));
        let pc = PairColumns { negative: Some("n".into()), ..pc };
        let p = parse_pairs(b"q,p,n\na,b,c\n", "p.csv", &CSV, &pc).unwrap();
        assert_eq!(p.negatives, Some(vec!["c".into()]));
        let e = parse_pairs(b"q,p\na,b\n", "p.csv", &CSV, &pc).unwrap_err().to_string();
        assert!(e.contains("no column \"n\""), "{e}");
    }
}
