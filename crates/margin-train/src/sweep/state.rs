//! A sweep folder's state: `sweep.json` (what the sweep is: the configuration in canonical
//! form and its data's fingerprints, the grid, the runs' epochs; format version
//! [`HEADER_VERSION`]) and `sweep.jsonl` (the finished runs, one [`RunRecord`] a line, in
//! grid order).
//!
//! **Resuming.** The same command again continues the sweep in its folder: finished runs
//! are skipped, the others run (a run killed mid-way resumes from its last checkpoint). A
//! folder made by another sweep — another configuration (by value: comments and data paths
//! aside, as `run.json` judges a run; see [`crate::manifest`]), other data bytes, another
//! grid or other epochs — is refused, naming each difference, because mixing its lines with
//! this sweep's would compare runs of different setups.
//!
//! **Writing.** Both files are replaced whole and atomically (`write_atomic`): a line is
//! "appended" by rewriting the file with it, so a kill leaves the old file or the new one,
//! never a torn line; the rewrite keeps grid order whatever order parallel runs finish in.
//! The writes are the fault steps `sweep.json` and `sweep.jsonl` ([`crate::fault`]); what a
//! kill leaves (a temporary file) is removed when the sweep is continued.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SweepError;
use super::grid::GridParam;
use super::record::{RECORD_VERSION, RunRecord};
use crate::manifest::{DataFingerprint, RunManifest, differing_keys};

/// The `sweep.json` format this release writes.
pub const HEADER_VERSION: u32 = 1;
/// The header's name in a sweep folder.
pub const HEADER: &str = "sweep.json";
/// The finished runs' name in a sweep folder.
pub const LINES: &str = "sweep.jsonl";

/// `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepHeader {
    /// [`HEADER_VERSION`].
    pub version: u32,
    /// The configuration file as given (for messages; not compared).
    pub config_file: String,
    /// The configuration and data as a run manifest holds them (canonical configuration,
    /// its SHA-256, the data files' fingerprints).
    pub manifest: RunManifest,
    /// The grid.
    pub grid: Vec<GridParam>,
    /// Epochs of every run (the sweep's `--epochs`, else the configuration's).
    pub run_epochs: usize,
}

fn state_err(path: &Path, reason: impl Into<String>) -> SweepError {
    SweepError::State { path: path.to_path_buf(), reason: reason.into() }
}

impl SweepHeader {
    /// The differences from `stored` (the folder's) to `self` (this command's), in words;
    /// empty when it is the same sweep.
    pub fn differences(&self, stored: &SweepHeader) -> Vec<String> {
        let mut out = Vec::new();
        if self.manifest.config_sha256 != stored.manifest.config_sha256 {
            let keys = differing_keys(&stored.manifest.config, &self.manifest.config);
            let keys = if keys.is_empty() { "its content".to_string() } else { keys.join(", ") };
            out.push(format!("the configuration differs ({keys}; the folder's sweep used {})", stored.config_file));
        }
        for d in &self.manifest.data {
            match stored.manifest.data.iter().find(|o| o.field == d.field) {
                Some(o) if o.sha256 == d.sha256 && o.bytes == d.bytes => {}
                Some(o) => out.push(format!("{} holds other data ({} bytes, sha256 {}…; the folder's sweep: {} bytes, sha256 {}…)", d.field, d.bytes, short(d), o.bytes, short(o))),
                None => out.push(format!("{} is data the folder's sweep did not have", d.field)),
            }
        }
        for o in &stored.manifest.data {
            if !self.manifest.data.iter().any(|d| d.field == o.field) {
                out.push(format!("{} was data of the folder's sweep and is not of this one", o.field));
            }
        }
        if self.grid != stored.grid {
            let flags = |g: &[GridParam]| g.iter().map(|p| format!("--param {}", p.flag())).collect::<Vec<_>>().join(" ");
            out.push(format!("the grid differs (this command: {}; the folder's sweep: {})", flags(&self.grid), flags(&stored.grid)));
        }
        if self.run_epochs != stored.run_epochs {
            out.push(format!("the runs' epochs differ (this command: {}; the folder's sweep: {})", self.run_epochs, stored.run_epochs));
        }
        out
    }
}

fn short(d: &DataFingerprint) -> String {
    d.sha256.chars().take(12).collect()
}

/// Opens the sweep folder `dir` for `header`: a new folder gets `sweep.json`; a folder of
/// the same sweep is continued — its finished runs, by grid index, are returned; anything
/// else is refused (see the module docs).
pub fn open(dir: &Path, header: &SweepHeader, ids: &[String]) -> Result<BTreeMap<usize, RunRecord>, SweepError> {
    let head_path = dir.join(HEADER);
    match std::fs::read(&head_path) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| state_err(&head_path, format!("not a sweep header: {e}")))?;
            if v["version"].as_u64().is_some_and(|n| n > u64::from(HEADER_VERSION)) {
                return Err(state_err(&head_path, format!("version {} is newer than this margin reads ({HEADER_VERSION}); upgrade margin", v["version"])));
            }
            let stored: SweepHeader = serde_json::from_value(v).map_err(|e| state_err(&head_path, format!("not a sweep header: {e}")))?;
            let diff = header.differences(&stored);
            if !diff.is_empty() {
                return Err(SweepError::OtherSweep { dir: dir.to_path_buf(), differences: diff });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.join(LINES).exists() || dir.join("runs").exists() {
                return Err(state_err(&head_path, "missing, but the folder holds sweep runs: it was not made by `margin sweep` of this release; choose another --out"));
            }
            std::fs::create_dir_all(dir).map_err(|e| margin_data::DataError::io(dir, e))?;
            let bytes = serde_json::to_vec_pretty(header).expect("a header serialises");
            crate::fault::step(HEADER, &head_path, &bytes, || margin_data::write_atomic(&head_path, &bytes))?;
        }
        Err(e) => return Err(margin_data::DataError::io(&head_path, e).into()),
    }
    sweep_temporaries(dir)?;
    read_lines(&dir.join(LINES), ids)
}

/// Removes the temporary files a killed write left in the sweep folder (each run's folder is
/// swept by its trainer).
fn sweep_temporaries(dir: &Path) -> Result<(), SweepError> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_file() && margin_data::atomic::is_temporary_name(&e.file_name().to_string_lossy()) {
            std::fs::remove_file(&p).map_err(|err| margin_data::DataError::io(&p, err))?;
        }
    }
    Ok(())
}

/// The finished runs in `path` (absent: none). Each line must be a record of this sweep:
/// its id the id of the grid point at its index.
fn read_lines(path: &Path, ids: &[String]) -> Result<BTreeMap<usize, RunRecord>, SweepError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(margin_data::DataError::io(path, e).into()),
    };
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |reason: String| state_err(path, format!("line {}: {reason}", n + 1));
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
        if v["version"].as_u64().is_some_and(|n| n > u64::from(RECORD_VERSION)) {
            return Err(at(format!("version {} is newer than this margin reads ({RECORD_VERSION}); upgrade margin", v["version"])));
        }
        let r: RunRecord = serde_json::from_value(v).map_err(|e| at(format!("not a sweep run record: {e}")))?;
        if ids.get(r.index) != Some(&r.id) {
            return Err(at(format!("run {} (index {}) is not a point of this sweep's grid", r.id, r.index)));
        }
        if out.insert(r.index, r).is_some() {
            return Err(at("a second line for the same run".into()));
        }
    }
    Ok(out)
}

/// Rewrites `dir/sweep.jsonl` with `records`, in grid order (atomically).
pub fn write_lines(dir: &Path, records: &BTreeMap<usize, RunRecord>) -> Result<(), SweepError> {
    let mut text = String::new();
    for r in records.values() {
        text.push_str(&serde_json::to_string(r).expect("a record serialises"));
        text.push('\n');
    }
    let p: PathBuf = dir.join(LINES);
    crate::fault::step(LINES, &p, text.as_bytes(), || margin_data::write_atomic(&p, text.as_bytes()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(config: &str, grid: &[(&str, &[f64])], epochs: usize) -> SweepHeader {
        let manifest = RunManifest {
            version: 1,
            config_sha256: format!("{:x}", sha2::Sha256::digest(config.as_bytes())),
            config: config.to_string(),
            data: vec![DataFingerprint { field: "data.path".into(), path: "d.csv".into(), bytes: 10, sha256: "ab".repeat(32) }],
        };
        let grid = grid.iter().map(|(p, v)| GridParam { path: p.to_string(), values: v.iter().map(|x| serde_json::json!(x)).collect() }).collect();
        SweepHeader { version: HEADER_VERSION, config_file: "c.toml".into(), manifest, grid, run_epochs: epochs }
    }
    use sha2::Digest;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("margin-sweep-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn another_sweep_is_refused_naming_each_difference() {
        let dir = tmp("refuse");
        let a = header("[train]\nlr = 0.1\n", &[("train.loss.margin", &[0.1, 0.2])], 1);
        assert!(open(&dir, &a, &[]).unwrap().is_empty(), "a new folder");
        assert!(open(&dir, &a, &[]).unwrap().is_empty(), "the same sweep again");
        let mut b = header("[train]\nlr = 0.2\n", &[("train.loss.margin", &[0.1, 0.3])], 2);
        b.manifest.data[0].sha256 = "cd".repeat(32);
        let e = open(&dir, &b, &[]).unwrap_err().to_string();
        for says in ["another sweep", "train.lr", "data.path holds other data", "the grid differs", "train.loss.margin=0.1,0.3", "train.loss.margin=0.1,0.2", "epochs differ (this command: 2; the folder's sweep: 1)"] {
            assert!(e.contains(says), "{says:?} missing: {e}");
        }
        // A folder of runs without a header, and a header from a newer margin: refused.
        let odd = tmp("odd");
        std::fs::create_dir_all(odd.join("runs")).unwrap();
        assert!(open(&odd, &a, &[]).unwrap_err().to_string().contains("not made by `margin sweep`"));
        std::fs::write(dir.join(HEADER), r#"{"version": 9}"#).unwrap();
        assert!(open(&dir, &a, &[]).unwrap_err().to_string().contains("newer than this margin reads"));
    }

    #[test]
    fn lines_must_belong_to_the_grid() {
        let dir = tmp("lines");
        let a = header("x = 1\n", &[("p", &[1.0])], 1);
        open(&dir, &a, &["aaaaaaaaaaaa".into()]).unwrap();
        std::fs::write(dir.join(LINES), "not json\n").unwrap();
        let e = open(&dir, &a, &["aaaaaaaaaaaa".into()]).unwrap_err().to_string();
        assert!(e.contains("sweep.jsonl") && e.contains("line 1") && e.contains("not JSON"), "{e}");
        std::fs::write(dir.join(LINES), "{\"version\": 7}\n").unwrap();
        assert!(open(&dir, &a, &[]).unwrap_err().to_string().contains("newer"));
    }
}
