//! The inputs the search commands share: embeddings `.npy` as f32 rows, `ids.txt`,
//! `tags.txt`, and opening an index, each with the command line's error context. The rules
//! themselves (usable rows, ids, tags) are margin-search's; this file only reads files.

use std::path::Path;

use anyhow::{Context, Result, bail};
use margin_search::{AnyIndex, Expect, Ids};

/// Embeddings as f32 rows: `(values, rows, dim)`. A float64 value beyond f32's range is
/// refused here (it would become an infinity); NaN and infinities are refused by
/// margin-search with their row and column.
pub fn read_rows(path: &Path, flag: &str) -> Result<(Vec<f32>, usize, usize)> {
    let (m, _) = crate::npy::read_matrix(path).with_context(|| format!("reading {flag} {}", path.display()))?;
    let (n, dim) = m.dim();
    let mut out = Vec::with_capacity(n * dim);
    for (i, &v) in m.iter().enumerate() {
        let f = v as f32;
        if v.is_finite() && !f.is_finite() {
            bail!("{flag} {}: row {}, column {} is {v:e}, beyond the range of f32", path.display(), i / dim.max(1), i % dim.max(1));
        }
        out.push(f);
    }
    Ok((out, n, dim))
}

/// The name an input goes by in errors (`--embeddings E.npy`).
pub fn input_name(flag: &str, path: &Path) -> String {
    format!("{flag} {}", path.display())
}

/// Parses an ids file (one id per line; margin-search's rules).
pub fn read_ids(path: &Path) -> Result<Ids> {
    let bytes = std::fs::read(path).with_context(|| format!("reading --ids {}", path.display()))?;
    Ok(Ids::parse(&path.display().to_string(), &bytes)?)
}

/// Reads a tags file: one tag per line (LF or CRLF), one line per row; tags may repeat.
pub fn read_tags(path: &Path, rows: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading --tags {} (UTF-8 text, one tag per line)", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let body = text.strip_suffix('\n').unwrap_or(text);
    let tags: Vec<String> = if body.is_empty() { vec![] } else { body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect() };
    if let Some(i) = tags.iter().position(|t| t.is_empty()) {
        bail!("--tags {}: line {}: empty tag (every line must hold one tag)", path.display(), i + 1);
    }
    if tags.len() != rows {
        bail!("--tags {} has {} tags but the embeddings have {rows} rows", path.display(), tags.len());
    }
    Ok(tags)
}

/// Opens an index file with the caller's expectations.
pub fn open_index(path: &Path, expect: &Expect) -> Result<AnyIndex> {
    margin_search::open(path, expect).with_context(|| format!("opening the index {}", path.display()))
}

/// Ids for `n` rows: the file's, or row numbers.
pub fn ids_or_rows(ids: Option<&Path>, n: usize, vectors: &str) -> Result<Ids> {
    match ids {
        Some(p) => {
            let ids = read_ids(p)?;
            ids.check_count(vectors, n)?;
            Ok(ids)
        }
        None => Ok(Ids::rows(0, n)),
    }
}
