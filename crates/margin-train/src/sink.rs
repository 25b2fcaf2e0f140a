//! Where a run's files go: a folder ([`FolderSink`], what `margin train` uses) or memory
//! ([`MemorySink`], for tests and bindings that train without touching the disk).
//!
//! The trainer writes only through [`RunSink`]: whole files (atomically), appended log
//! lines, and checkpoints — a group of files made visible at once ([`RunSink::publish`]).
//! Names are relative paths with `/` separators (`checkpoints/epoch-0003/model.bpk`).
//!
//! Temporary files never outlive a run: `write_atomic` removes its own on error, a failed
//! [`RunSink::publish`] removes its temporary folder, and what a kill leaves (`.NAME.tmp<pid>`
//! files, `.epoch-NNNN.tmp` folders, in the run folder and in `checkpoints/`) is swept by
//! [`FolderSink::new`], i.e. when the run is resumed or started again. Every write is a
//! fault step of the `fault` module (named by the file; checkpoint files
//! `checkpoint/<file>`, the folder's rename `checkpoint/publish`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use margin_data::atomic::is_temporary_name;
use margin_data::{DataError, write_atomic};

use crate::{TrainError, fault};

/// A run's storage.
pub trait RunSink: Send + std::fmt::Debug {
    /// Replaces `name` with `bytes`, atomically (the old content or the new, never a mix).
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError>;
    /// Appends `line` and a newline to `name` (created if needed).
    fn append_line(&mut self, name: &str, line: &str) -> Result<(), TrainError>;
    /// Makes the appended lines of `name` durable (a no-op in memory).
    fn sync(&mut self, name: &str) -> Result<(), TrainError>;
    /// The content of `name`, `None` when it does not exist.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, TrainError>;
    /// Makes `files` (name → bytes, relative to `dir`) the content of the folder `dir`, all
    /// at once: a reader sees the previous folder or the new one, never a partial one.
    fn publish(&mut self, dir: &str, files: &[(&str, &[u8])]) -> Result<(), TrainError>;
    /// Removes the folder `dir` and everything under it (nothing when absent).
    fn remove_dir(&mut self, dir: &str) -> Result<(), TrainError>;
    /// The names of the folders directly under `dir`.
    fn subdirs(&self, dir: &str) -> Result<Vec<String>, TrainError>;
    /// Where `name` lives, for messages (a folder sink's full path).
    fn locate(&self, name: &str) -> PathBuf {
        PathBuf::from(name)
    }
}

/// A run folder on disk.
#[derive(Debug)]
pub struct FolderSink {
    root: PathBuf,
    /// The file lines were last appended to, kept open (the log gets a line every step).
    appending: Option<(PathBuf, std::fs::File)>,
}

impl FolderSink {
    /// The folder `root` (created if needed), swept of the temporary files and folders an
    /// interrupted run left in it and in its `checkpoints/`.
    pub fn new(root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root).map_err(|e| DataError::io(root, e))?;
        let checkpoints = root.join("checkpoints");
        for dir in [root.to_path_buf(), checkpoints.clone()] {
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                // A folder moved aside by an interrupted publish: back if its replacement never arrived.
                if let Some(orig) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".old")).filter(|n| !n.is_empty() && dir == checkpoints) {
                    let back = dir.join(orig);
                    let r = if back.exists() { std::fs::remove_dir_all(&p) } else { std::fs::rename(&p, &back) };
                    r.map_err(|err| DataError::io(&p, err))?;
                    continue;
                }
                if !is_temporary_name(&name) {
                    continue;
                }
                let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                r.map_err(|err| DataError::io(&p, err))?;
            }
        }
        Ok(FolderSink { root: root.to_path_buf(), appending: None })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> PathBuf {
        name.split('/').fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Closes the kept append handle when `p` is (or is under) its file: it is about to be
    /// replaced, and a handle on the old file would append where nobody reads.
    fn release(&mut self, p: &Path) {
        if self.appending.as_ref().is_some_and(|(open, _)| open.starts_with(p)) {
            self.appending = None;
        }
    }
}

impl RunSink for FolderSink {
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let p = self.path(name);
        self.release(&p);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        Ok(fault::step(name, &p, bytes, || write_atomic(&p, bytes))?)
    }

    fn append_line(&mut self, name: &str, line: &str) -> Result<(), TrainError> {
        let p = self.path(name);
        if self.appending.as_ref().is_none_or(|(open, _)| *open != p) {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| DataError::io(&p, e))?;
            self.appending = Some((p.clone(), f));
        }
        let (_, f) = self.appending.as_mut().expect("opened above");
        writeln!(f, "{line}").map_err(|e| DataError::io(&p, e))?;
        Ok(())
    }

    fn sync(&mut self, name: &str) -> Result<(), TrainError> {
        let p = self.path(name);
        match &self.appending {
            Some((open, f)) if *open == p => f.sync_data().map_err(|e| DataError::io(&p, e))?,
            _ => {
                if let Ok(f) = std::fs::File::open(&p) {
                    f.sync_data().map_err(|e| DataError::io(&p, e))?;
                }
            }
        }
        Ok(())
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, TrainError> {
        let p = self.path(name);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DataError::io(&p, e).into()),
        }
    }

    /// Written into a temporary sibling folder (each file atomically), then renamed over `dir`.
    fn publish(&mut self, dir: &str, files: &[(&str, &[u8])]) -> Result<(), TrainError> {
        let target = self.path(dir);
        self.release(&target);
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = target.with_file_name(format!(".{name}.tmp"));
        let old = target.with_file_name(format!(".{name}.old"));
        let tag = if name == "best" { "best" } else { "checkpoint" };
        let _ = std::fs::remove_dir_all(&tmp);
        let written = (|| -> Result<(), DataError> {
            std::fs::create_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
            for (f, bytes) in files {
                let p = tmp.join(f);
                fault::step(&format!("{tag}/{f}"), &p, bytes, || write_atomic(&p, bytes))?;
            }
            fault::point(&format!("{tag}/publish:before"));
            // An existing folder (best/) is moved aside, not deleted, until the new one is
            // in place: a kill in between leaves `.NAME.old`, which `new` puts back.
            let _ = std::fs::remove_dir_all(&old);
            if target.exists() {
                std::fs::rename(&target, &old).map_err(|e| DataError::io(&target, e))?;
            }
            std::fs::rename(&tmp, &target).map_err(|e| DataError::io(&target, e))?;
            let _ = std::fs::remove_dir_all(&old);
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            if !target.exists() {
                let _ = std::fs::rename(&old, &target);
            }
            return Err(e.into());
        }
        fault::point(&format!("{tag}/publish:after"));
        if let Some(parent) = target.parent()
            && let Ok(d) = std::fs::File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn remove_dir(&mut self, dir: &str) -> Result<(), TrainError> {
        let p = self.path(dir);
        self.release(&p);
        match std::fs::remove_dir_all(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DataError::io(&p, e).into()),
        }
    }

    fn locate(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, TrainError> {
        let p = self.path(dir);
        let Ok(rd) = std::fs::read_dir(&p) else { return Ok(Vec::new()) };
        Ok(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
    }
}

/// A run kept in memory: every file by name.
#[derive(Clone, Default, PartialEq)]
pub struct MemorySink {
    files: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for MemorySink {
    /// The file names and sizes (not the bytes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.files.iter().map(|(k, v)| (k, v.len()))).finish()
    }
}

impl MemorySink {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every file, by name.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }
}

impl RunSink for MemorySink {
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        self.files.insert(name.to_string(), bytes.to_vec());
        Ok(())
    }

    fn append_line(&mut self, name: &str, line: &str) -> Result<(), TrainError> {
        let f = self.files.entry(name.to_string()).or_default();
        f.extend_from_slice(line.as_bytes());
        f.push(b'\n');
        Ok(())
    }

    fn sync(&mut self, _name: &str) -> Result<(), TrainError> {
        Ok(())
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, TrainError> {
        Ok(self.files.get(name).cloned())
    }

    fn publish(&mut self, dir: &str, files: &[(&str, &[u8])]) -> Result<(), TrainError> {
        self.remove_dir(dir)?;
        for (f, bytes) in files {
            self.files.insert(format!("{dir}/{f}"), bytes.to_vec());
        }
        Ok(())
    }

    fn remove_dir(&mut self, dir: &str) -> Result<(), TrainError> {
        let prefix = format!("{dir}/");
        self.files.retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }

    fn subdirs(&self, dir: &str) -> Result<Vec<String>, TrainError> {
        let prefix = format!("{dir}/");
        let mut out: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        out.dedup();
        Ok(out)
    }
}
