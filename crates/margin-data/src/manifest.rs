//! Image manifests: a CSV or JSON Lines file listing images with their class, for data
//! that is not laid out as `root/<class>/…` (a photo library, a labelling tool's export).
//!
//! **Format**, by the file's extension:
//! - `.csv`: a header row naming the columns `path` and `label` (required) and `split`
//!   (optional), in any order, other columns ignored; read by the `csv` crate (quoting on);
//! - `.jsonl`: one JSON object per line with `"path"` and `"label"` strings (a number
//!   label is read as its decimal name) and an optional `"split"`; blank lines skipped.
//!
//! `path` is relative to the manifest's folder (an absolute path is taken as it is);
//! `label` is the class name; `split` is `train` (or empty) or `test` — rows marked `test`
//! form the separate test set, whose classes must not also be training classes (the
//! leakage check compares names). Every listed file must exist: the first missing one is
//! an error naming the manifest, its line and the path, before anything is decoded.

use std::path::{Path, PathBuf};

use crate::DataError;

/// Which side of the data a manifest row is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSplit {
    /// Training pool (`train` or empty).
    Train,
    /// Separate test set (`test`).
    Test,
}

/// One image of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The file (resolved against the manifest's folder).
    pub path: PathBuf,
    /// Its class name.
    pub label: String,
    /// Its side.
    pub split: RowSplit,
    /// The manifest line it came from (1-based), for messages.
    pub line: usize,
}

fn bad(what: &Path, line: usize, reason: impl std::fmt::Display) -> DataError {
    DataError::Format { path: format!("{}, line {line}", what.display()), reason: reason.to_string() }
}

fn split_of(s: &str, what: &Path, line: usize) -> Result<RowSplit, DataError> {
    match s.trim() {
        "" | "train" => Ok(RowSplit::Train),
        "test" => Ok(RowSplit::Test),
        other => Err(bad(what, line, format!("split {other:?} is not \"train\", \"test\" or empty"))),
    }
}

/// Reads a manifest file and checks that every listed image exists.
pub fn read_manifest(path: &Path) -> Result<Vec<Entry>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let rows = match ext.as_str() {
        "csv" => parse_csv(&bytes, path)?,
        "jsonl" => parse_jsonl(&bytes, path)?,
        _ => return Err(DataError::format(path, "a manifest is a .csv (columns path, label[, split]) or a .jsonl file")),
    };
    if rows.is_empty() {
        return Err(DataError::format(path, "the manifest lists no image"));
    }
    rows.into_iter()
        .map(|(line, rel, label, split)| {
            if rel.is_empty() || label.is_empty() {
                return Err(bad(path, line, "empty path or label"));
            }
            let p = base.join(&rel);
            if !p.is_file() {
                return Err(bad(path, line, format!("the listed image {rel:?} does not exist (looked for {})", p.display())));
            }
            Ok(Entry { path: p, label, split, line })
        })
        .collect()
}

type Row = (usize, String, String, RowSplit);

fn parse_csv(bytes: &[u8], what: &Path) -> Result<Vec<Row>, DataError> {
    let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(bytes);
    let head = r.headers().map_err(|e| bad(what, 1, format!("not a CSV header: {e}")))?.clone();
    let col = |name: &str| head.iter().position(|h| h.trim() == name);
    let (Some(pc), Some(lc)) = (col("path"), col("label")) else {
        return Err(bad(what, 1, format!("the header must name the columns path and label (it has {:?})", head.iter().collect::<Vec<_>>())));
    };
    let sc = col("split");
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            bad(what, line, format!("not a CSV row: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let split = split_of(sc.and_then(|c| rec.get(c)).unwrap_or(""), what, line)?;
        out.push((line, rec.get(pc).unwrap_or("").to_string(), rec.get(lc).unwrap_or("").to_string(), split));
    }
    Ok(out)
}

fn parse_jsonl(bytes: &[u8], what: &Path) -> Result<Vec<Row>, DataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DataError::format(what, format!("not UTF-8: {e}")))?;
    let mut out = Vec::new();
    for (k, l) in text.lines().enumerate() {
        let line = k + 1;
        if l.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(l).map_err(|e| bad(what, line, format!("not a JSON object: {e}")))?;
        let field = |name: &str| -> Result<Option<String>, DataError> {
            match v.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(serde_json::Value::Number(n)) if name == "label" && n.is_i64() => Ok(Some(n.to_string())),
                Some(other) => Err(bad(what, line, format!("\"{name}\" is {other}, not a string"))),
            }
        };
        let path = field("path")?.ok_or_else(|| bad(what, line, "no \"path\""))?;
        let label = field("label")?.ok_or_else(|| bad(what, line, "no \"label\""))?;
        let split = split_of(&field("split")?.unwrap_or_default(), what, line)?;
        out.push((line, path, label, split));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("margin-manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("img")).unwrap();
        for f in ["a.png", "b.png", "c.png"] {
            std::fs::write(d.join("img").join(f), b"x").unwrap();
        }
        d
    }

    #[test]
    fn csv_and_jsonl_list_the_same_entries() {
        let d = setup("same");
        std::fs::write(d.join("m.csv"), "label,path,split,note\nann,img/a.png,,x\n\"bob, jr\",img/b.png,train,\ncy,img/c.png,test,\n").unwrap();
        std::fs::write(d.join("m.jsonl"), "{\"path\":\"img/a.png\",\"label\":\"ann\"}\n\n{\"path\":\"img/b.png\",\"label\":\"bob, jr\",\"split\":\"train\"}\n{\"path\":\"img/c.png\",\"label\":\"cy\",\"split\":\"test\"}\n").unwrap();
        let a = read_manifest(&d.join("m.csv")).unwrap();
        let b = read_manifest(&d.join("m.jsonl")).unwrap();
        let strip = |v: Vec<Entry>| v.into_iter().map(|e| (e.path, e.label, e.split)).collect::<Vec<_>>();
        assert_eq!(strip(a.clone()), strip(b));
        assert_eq!(a[1].label, "bob, jr");
        assert_eq!(a[2].split, RowSplit::Test);
        assert_eq!(a[0].path, d.join("img/a.png"));
    }

    #[test]
    fn missing_files_and_bad_rows_are_named() {
        let d = setup("bad");
        std::fs::write(d.join("m.csv"), "path,label\nimg/a.png,ann\nimg/gone.png,bob\n").unwrap();
        let e = read_manifest(&d.join("m.csv")).unwrap_err().to_string();
        assert!(e.contains("m.csv, line 3") && e.contains("img/gone.png") && e.contains("does not exist"), "{e}");
        std::fs::write(d.join("m.csv"), "file,label\nimg/a.png,ann\n").unwrap();
        assert!(read_manifest(&d.join("m.csv")).unwrap_err().to_string().contains("path and label"));
        std::fs::write(d.join("m.csv"), "path,label,split\nimg/a.png,ann,dev\n").unwrap();
        assert!(read_manifest(&d.join("m.csv")).unwrap_err().to_string().contains("\"dev\""));
        std::fs::write(d.join("m.jsonl"), "{\"path\":\"img/a.png\",\"label\":\"ann\"}\n{\"path\":3}\n").unwrap();
        let e = read_manifest(&d.join("m.jsonl")).unwrap_err().to_string();
        assert!(e.contains("m.jsonl, line 2"), "{e}");
        assert!(read_manifest(&d.join("m.txt")).is_err());
    }
}
