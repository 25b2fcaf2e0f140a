//! Atomic file replacement, the workspace's rule for every file it writes: the new content
//! goes to a temporary file in the same folder (so the rename cannot cross file systems),
//! is flushed and fsynced, then renamed over the target, and the folder is fsynced so the
//! rename itself survives a power cut. On any error the temporary file is removed and the
//! old file is untouched: a crash mid-write leaves the previous index whole.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, SearchError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn io(op: &str, path: &Path, source: std::io::Error) -> SearchError {
    SearchError::Io { op: op.into(), path: path.into(), source }
}

/// The temporary path next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "index".into(), |n| n.to_string_lossy().into_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `path` atomically with `write`, which streams the content into the writer.
///
/// # Errors
/// [`SearchError::Io`] naming the file and the step; the temporary file is removed.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| io("create", &tmp, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write(&mut w).map_err(|e| io("write", &tmp, e))?;
        let file = w.into_inner().map_err(|e| io("write", &tmp, e.into_error()))?;
        file.sync_all().map_err(|e| io("fsync", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io(&format!("rename {} to", tmp.display()), path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Durability of the rename; a folder that cannot be opened for fsync (some file systems)
    // does not make the already-complete write fail.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("margin-search-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.idx");
        write_atomic(&path, |w: &mut dyn Write| w.write_all(b"old")).unwrap();
        let e = write_atomic(&path, |w: &mut dyn Write| {
            w.write_all(b"half of the new")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("cannot write") && e.to_string().contains("disk full"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
