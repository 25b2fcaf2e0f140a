//! The run manifest `run.json`: what a run folder was started with, so that `--resume`
//! continues that run and nothing else.
//!
//! The stored configuration is the run's truth. At the start of a run the manifest
//! records (1) the configuration in canonical form (`config.toml` as margin writes it,
//! with the data paths, `output_root` and `train.epochs` blanked) and its SHA-256, and
//! (2) a content fingerprint (size and SHA-256 of the bytes; a folder: of every file
//! under it, by relative name) of every data file. A resume recomputes both: a
//! `config.toml` edited since (any field but the data paths and `epochs`) is refused,
//! naming the fields; a data file whose bytes changed is refused, naming it. Paths are
//! left out of the hash on purpose: data (or the run folder) may move — a path edited
//! to the moved file is accepted when the bytes are the same. `epochs` is left out
//! because extending a run is the one change a resume allows (fewer epochs than done is
//! refused by the trainer).
//!
//! Run folders written before the manifest existed have none: they resume (their
//! `[train]` section is still checked against the checkpoint's stored configuration by
//! [`crate::run_job`]) and get a manifest from that resume on.

use std::path::{Path, PathBuf};

use margin_data::DataSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{RunConfig, TrainError, config_toml};

/// The manifest's name in a run folder.
pub const MANIFEST: &str = "run.json";

/// The manifest format this release writes.
const MANIFEST_VERSION: u32 = 1;

/// A data file's content fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFingerprint {
    /// The configuration field (`data.path`, `data.test`, …).
    pub field: String,
    /// The file (or folder) as the run first resolved it.
    pub path: PathBuf,
    /// Total size in bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    /// Format version.
    pub version: u32,
    /// Hex SHA-256 of `config`.
    pub config_sha256: String,
    /// The configuration in canonical form (see the module docs).
    pub config: String,
    /// The data files' fingerprints.
    pub data: Vec<DataFingerprint>,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn resume_err(run: &Path, reason: String) -> TrainError {
    TrainError::Resume { run: run.to_path_buf(), reason }
}

/// `cfg` without what may change on resume: data paths, `output_root`, `train.epochs`.
pub fn canonical(cfg: &RunConfig) -> String {
    let mut c = cfg.clone();
    let blank = |p: &mut PathBuf| *p = PathBuf::new();
    let blank_opt = |p: &mut Option<PathBuf>| {
        if let Some(p) = p {
            *p = PathBuf::new()
        }
    };
    match &mut c.data {
        DataSpec::Omniglot { dir, .. } => blank(dir),
        DataSpec::ImageFolder { path, test, .. } => {
            blank(path);
            blank_opt(test)
        }
        DataSpec::Manifest { path, .. } => blank(path),
        DataSpec::Features { path, labels, test, test_labels } => {
            blank(path);
            blank_opt(labels);
            blank_opt(test);
            blank_opt(test_labels)
        }
        DataSpec::Csv { path, test, .. } => {
            blank(path);
            blank_opt(test)
        }
    }
    c.output_root = PathBuf::new();
    c.train.epochs = 0;
    // The device changes no setting of the run (results agree within the devices'
    // tolerance): a run may resume on another one.
    c.train.device = crate::DeviceSpec::Cpu;
    config_toml(&c)
}

/// The data files of `spec`, by configuration field, resolved as the loaders resolve them.
pub fn data_files(spec: &DataSpec) -> Vec<(String, PathBuf)> {
    let r = |p: &Path| margin_data::spec::resolve(p);
    let mut out = Vec::new();
    let mut add = |field: &str, p: &Option<PathBuf>| {
        if let Some(p) = p {
            out.push((field.to_string(), r(p)))
        }
    };
    match spec {
        DataSpec::Omniglot { dir, .. } => {
            let d = r(dir);
            for f in ["images_background.npz", "images_evaluation.npz", "all_runs.zip"] {
                add(&format!("data.dir/{f}"), &Some(d.join(f)));
            }
        }
        DataSpec::ImageFolder { path, test, .. } => {
            add("data.path", &Some(path.clone()));
            add("data.test", test);
        }
        // The manifest file (its images are listed in it, fingerprinted by its content).
        DataSpec::Manifest { path, .. } => add("data.path", &Some(path.clone())),
        DataSpec::Features { path, labels, test, test_labels } => {
            add("data.path", &Some(path.clone()));
            add("data.labels", labels);
            add("data.test", test);
            add("data.test_labels", test_labels);
        }
        DataSpec::Csv { path, test, .. } => {
            add("data.path", &Some(path.clone()));
            add("data.test", test);
        }
    }
    out
}

/// Size and hex SHA-256 of the file `path`, or of every file under the folder `path`
/// (relative names and contents, in name order).
pub fn fingerprint(path: &Path) -> Result<(u64, String), TrainError> {
    fn walk(root: &Path, p: &Path, h: &mut Sha256, total: &mut u64) -> Result<(), TrainError> {
        let io = |e| margin_data::DataError::io(p, e);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p).map_err(io)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io)?;
            entries.sort();
            for e in entries {
                walk(root, &e, h, total)?;
            }
        } else {
            let bytes = std::fs::read(p).map_err(io)?;
            if p != root {
                let rel = p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned();
                h.update((rel.len() as u64).to_le_bytes());
                h.update(rel.as_bytes());
                h.update((bytes.len() as u64).to_le_bytes());
            }
            h.update(&bytes);
            *total += bytes.len() as u64;
        }
        Ok(())
    }
    let mut h = Sha256::new();
    let mut total = 0;
    walk(path, path, &mut h, &mut total)?;
    Ok((total, hex(h.finalize())))
}

/// The dotted keys whose values differ between two TOML documents.
pub fn differing_keys(a: &str, b: &str) -> Vec<String> {
    fn walk(prefix: &str, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<String>) {
        match (a, b) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (x, y) if x != y => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let parse = |s: &str| s.parse::<toml::Table>().ok().map(toml::Value::Table);
    let mut out = Vec::new();
    walk("", parse(a).as_ref(), parse(b).as_ref(), &mut out);
    out
}

impl RunManifest {
    /// The manifest of a run of `cfg` (fingerprints the data: reads every data file).
    pub fn of(cfg: &RunConfig) -> Result<Self, TrainError> {
        let config = canonical(cfg);
        let mut data = Vec::new();
        for (field, path) in data_files(&cfg.data) {
            if !path.exists() && field.ends_with("all_runs.zip") {
                continue; // optional: Omniglot without its one-shot runs
            }
            let (bytes, sha256) = fingerprint(&path)?;
            data.push(DataFingerprint { field, path, bytes, sha256 });
        }
        Ok(RunManifest { version: MANIFEST_VERSION, config_sha256: hex(Sha256::digest(config.as_bytes())), config, data })
    }

    /// The manifest of the run folder `run`, `None` for a folder written before manifests.
    pub fn read(run: &Path) -> Result<Option<Self>, TrainError> {
        let p = run.join(MANIFEST);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| TrainError::Checkpoint { path: p, reason: format!("corrupt run manifest: {e}") }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(margin_data::DataError::io(&p, e).into()),
        }
    }

    /// Writes it to `run/run.json` (atomically; the `run.json` fault step).
    pub fn write(&self, run: &Path) -> Result<(), TrainError> {
        let p = run.join(MANIFEST);
        let bytes = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        Ok(crate::fault::step(MANIFEST, &p, &bytes, || margin_data::write_atomic(&p, &bytes))?)
    }

    /// Refuses to resume the run in `run` with `cfg` (its `config.toml`) when the
    /// configuration or the data differ from what the run started with.
    pub fn check(&self, cfg: &RunConfig, run: &Path) -> Result<(), TrainError> {
        if self.version > MANIFEST_VERSION {
            return Err(resume_err(run, format!("{} has version {}, newer than this margin reads ({MANIFEST_VERSION}); upgrade margin", run.join(MANIFEST).display(), self.version)));
        }
        let now = canonical(cfg);
        // The hash is the fast path; the stored text decides, value by value, so that a
        // change in how a later margin formats the same configuration is not an edit.
        let fields = if hex(Sha256::digest(now.as_bytes())) == self.config_sha256 { Vec::new() } else { differing_keys(&self.config, &now) };
        if !fields.is_empty() {
            let fields: Vec<String> = fields.into_iter().map(|f| if f.is_empty() { "the whole configuration".to_string() } else { f }).collect();
            return Err(resume_err(
                run,
                format!(
                    "{} was edited after the run started ({} changed; {} records the original): a resumed run keeps its configuration — to train with the edited one, start a new run: `margin train --config {} --out NEWDIR`",
                    run.join("config.toml").display(),
                    fields.join(", "),
                    MANIFEST,
                    run.join("config.toml").display(),
                ),
            ));
        }
        for (field, path) in data_files(&cfg.data) {
            let Some(old) = self.data.iter().find(|d| d.field == field) else {
                if path.exists() && !field.ends_with("all_runs.zip") {
                    return Err(resume_err(run, format!("{field} ({}) was not part of the run when it started", path.display())));
                }
                continue;
            };
            if !path.exists() {
                return Err(resume_err(
                    run,
                    format!("{field}: {} does not exist (the run was trained on {}, {} bytes); point {field} in config.toml at the same file", path.display(), old.path.display(), old.bytes),
                ));
            }
            let (bytes, sha) = fingerprint(&path)?;
            if bytes != old.bytes || sha != old.sha256 {
                return Err(resume_err(
                    run,
                    format!(
                        "{field}: {} is not the data the run was trained on ({bytes} bytes, sha256 {}…; the run started on {}, {} bytes, sha256 {}…); a resume needs the same data (a moved file is fine)",
                        path.display(),
                        &sha[..12],
                        old.path.display(),
                        old.bytes,
                        old.sha256.chars().take(12).collect::<String>()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RunConfig {
        crate::parse_config(crate::DEFAULT_CONFIG, "the bundled default").unwrap()
    }

    #[test]
    fn the_canonical_form_leaves_out_paths_and_epochs_only() {
        let a = cfg();
        let mut b = a.clone();
        b.train.epochs += 5;
        b.output_root = "elsewhere".into();
        if let DataSpec::Omniglot { dir, .. } = &mut b.data {
            *dir = "/moved/omniglot".into();
        }
        assert_eq!(canonical(&a), canonical(&b));
        b.train.lr *= 2.0;
        b.split.val_fraction = 0.25;
        assert_eq!(differing_keys(&canonical(&a), &canonical(&b)), vec!["split.val_fraction".to_string(), "train.lr".to_string()]);
    }

    #[test]
    fn a_reformatted_or_tampered_manifest_is_judged_by_value() {
        let run = std::env::temp_dir().join(format!("margin-manifest-{}", std::process::id()));
        let c = cfg();
        let m = RunManifest::of(&c).unwrap();
        assert!(!m.data.is_empty(), "the bundled Omniglot files are fingerprinted");
        // The same values, formatted differently (another hash): not an edit.
        let reformatted = RunManifest { config_sha256: "0".repeat(64), config: m.config.replace(" = ", "="), ..m.clone() };
        let check = |m: &RunManifest| m.check(&c, &run).map_err(|e| e.to_string());
        check(&m).unwrap();
        check(&reformatted).unwrap();
        // Garbage where the configuration should be: refused, not a panic.
        let garbage = RunManifest { config: "é\u{0}[[".into(), ..reformatted.clone() };
        let e = check(&garbage).unwrap_err();
        assert!(e.contains("the whole configuration"), "{e}");
        // A fingerprint that is not hex: refused, naming the file, not a panic.
        let mut tampered = m.clone();
        tampered.data[0].sha256 = "ééééééééééééé".into();
        let e = check(&tampered).unwrap_err();
        assert!(e.contains(&m.data[0].field) && e.contains("not the data the run was trained on"), "{e}");
    }
}
