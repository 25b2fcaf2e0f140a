//! The bad-input suite's harness: a case is a command line run on files it writes into
//! its own scratch folder, and what its failure must look like — the exit status, no
//! panic or abort, and the words the message must contain (the input it names and the
//! rule it broke). A regression in any of them fails the case with the full output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One bad input.
pub struct Case {
    /// Its name (also its scratch folder's).
    pub name: &'static str,
    /// Files to write first: (name relative to the scratch folder, content; `{dir}` in a
    /// UTF-8 file is replaced as in the arguments).
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// The arguments of `margin`; `{dir}` is replaced by the scratch folder,
    /// `{repo}` by the repository root.
    pub args: Vec<String>,
    /// Environment variables to set.
    pub env: Vec<(&'static str, String)>,
    /// The exit status it must end with: 1 (an error of the command) or 2 (clap refused
    /// the command line).
    pub status: i32,
    /// Words the message (stderr) must contain, case-insensitively.
    pub says: Vec<&'static str>,
    /// Files (relative to the scratch folder) that must not exist afterwards.
    pub not_written: Vec<&'static str>,
}

impl Case {
    /// A case with no files, expecting an error of the command (status 1).
    pub fn new(name: &'static str, args: &[&str], says: &[&'static str]) -> Self {
        Case { name, files: vec![], args: args.iter().map(|s| s.to_string()).collect(), env: vec![], status: 1, says: says.to_vec(), not_written: vec![] }
    }

    /// Writes `content` to `file` in the scratch folder first.
    pub fn file(mut self, file: &'static str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((file, content.into()));
        self
    }

    /// Expects clap's usage error (status 2).
    pub fn usage(mut self) -> Self {
        self.status = 2;
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: &'static str, v: &str) -> Self {
        self.env.push((k, v.to_string()));
        self
    }

    /// `file` must not exist afterwards (nothing written on failure).
    pub fn writes_nothing_to(mut self, file: &'static str) -> Self {
        self.not_written.push(file);
        self
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The folder of case `name` (emptied).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("margin-bad-input-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `case`; the description of what went wrong, if anything did.
pub fn run(case: &Case) -> Option<String> {
    let dir = scratch(case.name);
    let subst = |s: &str| s.replace("{dir}", dir.to_str().unwrap()).replace("{repo}", repo().to_str().unwrap());
    for (f, content) in &case.files {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Text files (configurations) may name the scratch folder too.
        match std::str::from_utf8(content) {
            Ok(text) if text.contains("{dir}") => std::fs::write(p, subst(text)).unwrap(),
            _ => std::fs::write(p, content).unwrap(),
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_margin"));
    cmd.args(case.args.iter().map(|a| subst(a))).env("RAYON_NUM_THREADS", "2").env_remove("RUST_BACKTRACE");
    for (k, v) in &case.env {
        cmd.env(k, subst(v));
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lower = stderr.to_lowercase();
    let mut faults = Vec::new();
    match out.status.code() {
        Some(c) if c == case.status => {}
        Some(c) => faults.push(format!("exit status {c}, expected {}", case.status)),
        None => faults.push("killed by a signal (an abort?)".to_string()),
    }
    if lower.contains("panicked") || lower.contains("memory allocation of") {
        faults.push("it panicked or aborted".to_string());
    }
    for w in &case.says {
        if !lower.contains(&w.to_lowercase()) {
            faults.push(format!("the message does not say {w:?}"));
        }
    }
    for f in &case.not_written {
        if dir.join(f).exists() {
            faults.push(format!("{f} was written"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    (!faults.is_empty()).then(|| format!("case {}: {}\n  margin {}\n  stderr: {}", case.name, faults.join("; "), case.args.join(" "), stderr.trim()))
}

/// Runs every case and fails listing every one that went wrong.
pub fn run_all(cases: &[Case]) {
    let failed: Vec<String> = cases.iter().filter_map(run).collect();
    assert!(failed.is_empty(), "{} of {} bad-input cases went wrong:\n{}", failed.len(), cases.len(), failed.join("\n"));
    eprintln!("{} bad-input cases handled", cases.len());
}

/// A `.npy` (v1.0) of `f32` or `f64` values with `shape`.
pub fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        s => format!("({})", s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The digits configuration with `edits` (from, to) applied, its data path absolute.
pub fn digits_config(edits: &[(&str, &str)]) -> Vec<u8> {
    let csv = repo().join("../shared/data/sklearn_digits/digits.csv.gz");
    let mut text = std::fs::read_to_string(repo().join("configs/digits.toml"))
        .unwrap()
        .replace("../shared/data/sklearn_digits/digits.csv.gz", csv.to_str().unwrap());
    for (from, to) in edits {
        assert!(text.contains(from), "configs/digits.toml has no {from:?}");
        text = text.replace(from, to);
    }
    text.into_bytes()
}
