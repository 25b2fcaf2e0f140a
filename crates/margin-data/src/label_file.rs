//! Label files a user sees (`margin embed --labels-out`): each sample's **class name**
//! (Conventions: labels are class names in every output file).
//!
//! Two forms, chosen by the file's extension: `.txt` holds one name per line (any
//! names: folder paths, manifest labels), `.npy` holds `int64` labels — allowed only when
//! every name is an integer (a `.npy`/CSV source's own labels, written back unchanged,
//! which `margin eval --labels` reads). Named classes written to `.npy` would have to be
//! renumbered, so that is refused with the fix. A name with a line break cannot be a line
//! of a `.txt` file and is refused too. Both are written atomically.

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

#[cfg(test)]
mod tests {
    use super::*;

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
