//! Label files a user sees (`margin embed --labels-out`): each sample's **class name**
//! (Conventions: labels are class names in every output file).
//!
//! Two forms, chosen by the file's extension: `.txt` holds one name per line (any
//! names: folder paths, manifest labels), `.npy` holds `int64` labels — allowed only when
//! every name is an integer (a `.npy`/CSV source's own labels, written back unchanged,
//! which `margin eval --labels` reads). Named classes written to `.npy` would have to be
//! renumbered, so that is refused with the fix. A name with a line break cannot be a line
//! of a `.txt` file and is refused too. Both are written atomically.
//!
//! [`read_label_names`] reads either form back as names (an `.npy` integer by its decimal
//! form, as everywhere): `.txt` lines split at LF or CRLF, the final line ending ends the
//! last name, and an empty line is an error naming the file and line (an empty name is no
//! class). [`index_names`] turns name lists into indices of one shared class table, so a
//! query file and a reference file in different forms still agree on which class is which.

use std::path::Path;

use crate::{DataError, Dataset};

/// Writes `ds`'s per-sample class names to `path` (`.txt` or `.npy`, module docs).
pub fn write_labels(path: &Path, ds: &Dataset) -> Result<(), DataError> {
    let names = ds.label_names();
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "npy" => {
            let ints: Option<Vec<i64>> = names.iter().map(|n| n.parse::<i64>().ok().filter(|v| v.to_string() == *n)).collect();
            let ints = ints.ok_or_else(|| {
                DataError::format(path, format!("{}'s classes have names (e.g. {:?}), which an int64 .npy cannot hold; write the labels to a .txt file (one class name per line)", ds.name, names.iter().find(|n| n.parse::<i64>().is_err()).unwrap_or(&"")))
            })?;
            crate::npy::write_npy_i64(path, &[ints.len()], &ints)
        }
        "txt" => {
            if let Some(n) = names.iter().find(|n| n.contains(['\n', '\r'])) {
                return Err(DataError::format(path, format!("class name {n:?} has a line break; it cannot be one line of a .txt label file")));
            }
            let mut text = names.join("\n");
            text.push('\n');
            crate::write_atomic(path, text.as_bytes())
        }
        _ => Err(DataError::format(path, "a label file is .txt (one class name per line) or .npy (int64, for integer class names)")),
    }
}

/// Reads a label file (`.txt` or integer `.npy`, module docs) as one class name per sample.
pub fn read_label_names(path: &Path) -> Result<Vec<String>, DataError> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "txt" => {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            let text = String::from_utf8(bytes).map_err(|e| DataError::format(path, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
            let body = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            if body.is_empty() {
                return Err(DataError::format(path, "no label (the file is empty)"));
            }
            body.split('\n')
                .enumerate()
                .map(|(k, l)| {
                    let l = l.strip_suffix('\r').unwrap_or(l);
                    if l.is_empty() { Err(DataError::format(path, format!("line {} is empty: every line names one sample's class", k + 1))) } else { Ok(l.to_string()) }
                })
                .collect()
        }
        "npy" => {
            let a = crate::npy::read_npy(path)?;
            let shape = a.header.shape.clone();
            if shape.len() != 1 && !(shape.len() == 2 && shape[1] == 1) {
                return Err(DataError::format(path, format!("labels must be 1-D (one per row), found shape {shape:?}")));
            }
            let ints = a.ints().map_err(|_| DataError::format(path, format!("labels must be integers (int8..int64, uint8..uint64) or bools, found {:?}", a.header.dtype)))?;
            Ok(ints.iter().map(i64::to_string).collect())
        }
        _ => Err(DataError::format(path, "a label file is .txt (one class name per line) or .npy (integers)")),
    }
}

/// Indices into one class table (the sorted distinct names of all `lists`) for each list.
pub fn index_names(lists: &[&[String]]) -> (Vec<Vec<i64>>, Vec<String>) {
    let table: Vec<String> = lists.iter().flat_map(|l| l.iter().cloned()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let idx = lists.iter().map(|l| l.iter().map(|n| table.binary_search(n).map_or(-1, |k| k as i64)).collect()).collect();
    (idx, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_files_read_back_as_names() {
        let dir = std::env::temp_dir().join(format!("margin-labelread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let named = Dataset::with_names("f", vec![0.0; 3], vec![1], vec![1, 0, 1], vec!["ann".into(), "bob/x".into()]).unwrap();
        write_labels(&dir.join("w.txt"), &named).unwrap();
        assert_eq!(read_label_names(&dir.join("w.txt")).unwrap(), ["bob/x", "ann", "bob/x"]);
        std::fs::write(dir.join("crlf.txt"), "a\r\nb\r\n").unwrap();
        assert_eq!(read_label_names(&dir.join("crlf.txt")).unwrap(), ["a", "b"]);
        std::fs::write(dir.join("gap.txt"), "a\n\nb\n").unwrap();
        let e = read_label_names(&dir.join("gap.txt")).unwrap_err().to_string();
        assert!(e.contains("gap.txt") && e.contains("line 2 is empty"), "{e}");
        std::fs::write(dir.join("empty.txt"), "").unwrap();
        assert!(read_label_names(&dir.join("empty.txt")).unwrap_err().to_string().contains("empty"));
        let ints = Dataset::new("csv", vec![0.0; 2], vec![1], vec![7, -3]).unwrap();
        write_labels(&dir.join("i.npy"), &ints).unwrap();
        assert_eq!(read_label_names(&dir.join("i.npy")).unwrap(), ["7", "-3"]);
        let (a, b) = (vec!["7".to_string(), "bob".into()], vec!["bob".to_string(), "ann".into()]);
        let (idx, table) = index_names(&[&a, &b]);
        assert_eq!(table, ["7", "ann", "bob"]);
        assert_eq!(idx, [vec![0, 2], vec![2, 1]]);
    }

    #[test]
    fn integer_names_to_npy_and_any_names_to_txt() {
        let dir = std::env::temp_dir().join(format!("margin-labelfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ints = Dataset::new("csv", vec![0.0; 3], vec![1], vec![7, -3, 7]).unwrap();
        write_labels(&dir.join("l.npy"), &ints).unwrap();
        assert_eq!(crate::npy::read_npy(&dir.join("l.npy")).unwrap().ints().unwrap(), &[7, -3, 7], "the source's own integers, not indices");
        let named = Dataset::with_names("f", vec![0.0; 2], vec![1], vec![1, 0], vec!["ann".into(), "bob/x".into()]).unwrap();
        write_labels(&dir.join("l.txt"), &named).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("l.txt")).unwrap(), "bob/x\nann\n");
        let e = write_labels(&dir.join("n.npy"), &named).unwrap_err().to_string();
        assert!(e.contains("n.npy") && e.contains(".txt"), "{e}");
        assert!(write_labels(&dir.join("l.csv"), &named).is_err());
    }
}
