//! Atomic file replacement: [`write_atomic`] writes a temporary sibling
//! (`.NAME.tmp<pid>`), `fsync`s it, renames it over the target and `fsync`s the folder,
//! so a reader (or a crash) sees the old file or the new one, never a mix.
//!
//! Design: the temporary file lives in the target's own folder because `rename` is atomic
//! only within one file system. It is removed again on every error path (a failed write,
//! fsync or rename), so an error never leaves `.NAME.tmp<pid>` behind; only a kill between
//! creating it and the rename can, and run folders sweep those at their next start
//! (margin-train's `FolderSink`). Errors name the real problem: a missing parent folder is
//! reported as such (with the target's name), not as a failure to create the temporary
//! file, whose name means nothing to the user.

use std::path::{Path, PathBuf};

use crate::DataError;

/// The temporary file [`write_atomic`] writes before renaming it over `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = parent_of(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.tmp{}", std::process::id()))
}

/// Whether `name` is a temporary of [`write_atomic`] (`.NAME.tmp<digits>`) or of a
/// published folder (`.NAME.tmp`): what a killed writer leaves behind.
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with('.') && name.rfind(".tmp").is_some_and(|i| i > 1 && name[i + 4..].bytes().all(|b| b.is_ascii_digit()))
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder,
/// `fsync`, then `rename` over the target. A crash leaves the old file or the new one;
/// an error leaves no temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = parent_of(path);
    if !dir.is_dir() {
        let reason = if dir.exists() { "is not a folder" } else { "does not exist" };
        return Err(DataError::Format {
            path: path.display().to_string(),
            reason: format!("cannot write it: its folder {} {reason}", dir.display()),
        });
    }
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        crate::npy::write_all(&mut f, bytes)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    // The rename is durable once the folder's entry is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("margin-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tmp("ok");
        let p = d.join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(entries(&d), vec!["a.json".to_string()]);
    }

    #[test]
    fn a_missing_folder_is_named_not_the_temporary_file() {
        let d = tmp("nodir");
        let p = d.join("nodir").join("x.npy");
        let e = write_atomic(&p, b"x").unwrap_err().to_string();
        assert!(e.contains("x.npy") && e.contains("nodir") && e.contains("does not exist"), "{e}");
        assert!(!e.contains(".tmp"), "{e}");
        // A file where the folder should be.
        std::fs::write(d.join("file"), b"").unwrap();
        let e = write_atomic(&d.join("file").join("x.npy"), b"x").unwrap_err().to_string();
        assert!(e.contains("is not a folder"), "{e}");
    }

    #[test]
    fn a_failed_rename_removes_the_temporary() {
        // Renaming a file over a non-empty folder fails after the temporary is written.
        let d = tmp("rename");
        std::fs::create_dir_all(d.join("target/inside")).unwrap();
        let e = write_atomic(&d.join("target"), b"bytes").unwrap_err().to_string();
        assert!(e.contains("target"), "{e}");
        assert_eq!(entries(&d), vec!["target".to_string()], "the temporary was removed");
    }

    #[test]
    fn temporary_names() {
        assert!(is_temporary_name(".model.safetensors.tmp26448"));
        assert!(is_temporary_name(".epoch-0003.tmp"));
        assert!(!is_temporary_name("model.safetensors"));
        assert!(!is_temporary_name(".tmp"));
        assert!(!is_temporary_name(".a.tmpx"));
        assert_eq!(temp_path(Path::new("x.npy")), PathBuf::from(format!("./.x.npy.tmp{}", std::process::id())));
    }
}
