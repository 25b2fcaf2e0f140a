//! The index file, version 1 — one file, little-endian, streamed in and out (never held
//! twice in memory):
//!
//! ```text
//! header   magic "MARGNIDX" · version u32 · kind u8 (0 exact, 1 hnsw) · metric u8 ·
//!          precision u8 · flags u8 (bit 0: tagged) · dim u32 · slots u64 · M u32 ·
//!          ef_construction u32 · seed u64 · entry slot u32 (u32::MAX: none) · entry level u32 ·
//!          fingerprint (u32 length + UTF-8) · CRC-32 of the header
//! sections each: tag [4] · length u64 · bytes · CRC-32 of the bytes, in this order:
//!          "IDS " per slot u32 length + UTF-8 id        "DEL " removed slots, a bitmap
//!          "TAGS" (tagged) names table + u32 per slot    "VECS" slots × dim values
//!          "SCAL" (i8) f32 scale per slot                "LEVL" (hnsw) u8 level per slot
//!          "LNK0" (hnsw) slots × (1 + 2M) u32            "LNKU" (hnsw) upper lists, slot order
//! ```
//!
//! The version is read right after the magic, so a newer file is refused by version (and
//! asked to upgrade) before anything else is parsed. Every length is checked against what
//! the header implies and against the bytes left in the file before anything is allocated;
//! every section's checksum is verified; then the content is checked (UTF-8 ids, no empty
//! or duplicate live id, finite values, tag and neighbour indices in range, list counts
//! within capacity, the entry point on the top level), each failure naming the file, the
//! section and what is wrong. The file ends after the last section.
//!
//! `add` and `remove` change the index in memory; `save` rewrites the whole file atomically
//! (temporary file, fsync, rename: [`crate::atomic`]). A rewrite rather than an appended log:
//! one format to read, nothing to replay, and a crash mid-write leaves the old file whole —
//! at the price of writing the full file per save (phase 2 may add a log for large galleries).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use crate::catalog::{Catalog, Tags};
use crate::core::{Core, MAX_FINGERPRINT, margin_max_dim};
use crate::error::{Result, SearchError};
use crate::hnsw::{Graph, HnswIndex, HnswParams, MAX_LEVEL};
use crate::metric;
use crate::store::{Codes, Precision, Store};
use crate::{AnyIndex, Expect, FlatIndex};

pub(crate) const MAGIC: &[u8; 8] = b"MARGNIDX";
/// The newest format version this release writes and reads.
pub const VERSION: u32 = 1;

/// A writer that checksums what passes through it.
struct Crc<'a> {
    w: &'a mut dyn Write,
    h: crc32fast::Hasher,
}

impl Write for Crc<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(b)?;
        self.h.update(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

fn section(w: &mut dyn Write, tag: &[u8; 4], len: u64, body: impl FnOnce(&mut Crc) -> std::io::Result<()>) -> std::io::Result<()> {
    w.write_all(tag)?;
    w.write_all(&len.to_le_bytes())?;
    let mut c = Crc { w, h: crc32fast::Hasher::new() };
    body(&mut c)?;
    let crc = c.h.finalize();
    w.write_all(&crc.to_le_bytes())
}

fn put_u32s(w: &mut dyn Write, v: &[u32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for c in v.chunks(16 * 1024) {
        buf.clear();
        c.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

fn put_f32s(w: &mut dyn Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    for c in v.chunks(16 * 1024) {
        buf.clear();
        c.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

fn strings_len(v: &[String]) -> u64 {
    v.iter().map(|s| 4 + s.len() as u64).sum()
}

fn put_strings(w: &mut dyn Write, v: &[String]) -> std::io::Result<()> {
    for s in v {
        w.write_all(&(s.len() as u32).to_le_bytes())?;
        w.write_all(s.as_bytes())?;
    }
    Ok(())
}

/// Writes `core` (and the graph, for HNSW) to `path` atomically.
pub(crate) fn save(path: &Path, core: &Core, hnsw: Option<(&HnswParams, &Graph)>) -> Result<()> {
    crate::atomic::write_atomic(path, |w| write_index(w, core, hnsw))
}

pub(crate) fn write_index(w: &mut dyn Write, core: &Core, hnsw: Option<(&HnswParams, &Graph)>) -> std::io::Result<()> {
    let (store, cat) = (&core.store, &core.cat);
    let slots = cat.slots();
    let entry = hnsw.and_then(|(_, g)| *g.entry.lock().unwrap_or_else(|p| p.into_inner()));
    let mut h = Vec::new();
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&[u8::from(hnsw.is_some()), metric::code(store.metric), store.precision().code(), u8::from(cat.tags.is_some())]);
    h.extend_from_slice(&(store.dim as u32).to_le_bytes());
    h.extend_from_slice(&(slots as u64).to_le_bytes());
    let (m, efc, seed) = hnsw.map_or((0, 0, 0), |(p, _)| (p.m as u32, p.ef_construction as u32, p.seed));
    h.extend_from_slice(&m.to_le_bytes());
    h.extend_from_slice(&efc.to_le_bytes());
    h.extend_from_slice(&seed.to_le_bytes());
    h.extend_from_slice(&entry.map_or(u32::MAX, |e| e.0).to_le_bytes());
    h.extend_from_slice(&entry.map_or(0, |e| u32::from(e.1)).to_le_bytes());
    h.extend_from_slice(&(core.fingerprint.len() as u32).to_le_bytes());
    h.extend_from_slice(core.fingerprint.as_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    w.write_all(&h)?;

    section(w, b"IDS ", cat.ids().map(|s| 4 + s.len() as u64).sum(), |w| {
        for s in cat.ids() {
            w.write_all(&(s.len() as u32).to_le_bytes())?;
            w.write_all(s.as_bytes())?;
        }
        Ok(())
    })?;
    let mut bits = vec![0u8; slots.div_ceil(8)];
    for (s, _) in cat.removed.iter().enumerate().filter(|(_, r)| **r) {
        bits[s / 8] |= 1 << (s % 8);
    }
    section(w, b"DEL ", bits.len() as u64, |w| w.write_all(&bits))?;
    if let Some(t) = &cat.tags {
        section(w, b"TAGS", 4 + strings_len(&t.names) + 4 * slots as u64, |w| {
            w.write_all(&(t.names.len() as u32).to_le_bytes())?;
            put_strings(w, &t.names)?;
            put_u32s(w, &t.of_slot)
        })?;
    }
    let values = (slots * store.dim) as u64;
    match &store.codes {
        Codes::F32(v) => section(w, b"VECS", 4 * values, |w| put_f32s(w, v))?,
        Codes::F16(v) => section(w, b"VECS", 2 * values, |w| {
            let mut buf = Vec::with_capacity(64 * 1024);
            for c in v.chunks(32 * 1024) {
                buf.clear();
                c.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                w.write_all(&buf)?;
            }
            Ok(())
        })?,
        Codes::I8 { codes, scales } => {
            // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is
            // valid for both: this is a reinterpretation of the same initialised bytes.
            let bytes = unsafe { std::slice::from_raw_parts(codes.as_ptr().cast::<u8>(), codes.len()) };
            debug_assert_eq!(bytes.len(), codes.len());
            section(w, b"VECS", values, |w| w.write_all(bytes))?;
            section(w, b"SCAL", 4 * slots as u64, |w| put_f32s(w, scales))?;
        }
    }
    if let Some((_, g)) = hnsw {
        let (l0, up) = g.words();
        section(w, b"LEVL", slots as u64, |w| w.write_all(&g.levels))?;
        section(w, b"LNK0", 4 * l0.len() as u64, |w| put_u32s(w, &l0))?;
        section(w, b"LNKU", 4 * up.len() as u64, |w| put_u32s(w, &up))?;
    }
    w.flush()
}

/// A bounded reader: every read is checked against the bytes left in the file.
struct Input<'a> {
    r: BufReader<File>,
    left: u64,
    offset: u64,
    path: &'a Path,
}

impl Input<'_> {
    fn corrupt(&self, reason: String) -> SearchError {
        SearchError::Corrupt { path: self.path.into(), reason }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.left {
            return Err(self.corrupt(format!("truncated: {what} needs {n} bytes at offset {} but the file has {} left", self.offset, self.left)));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| SearchError::Io { op: "read".into(), path: self.path.into(), source: e })?;
        self.left -= n;
        self.offset += n;
        Ok(buf)
    }

    /// Reads section `tag` of exactly `len` bytes and verifies its checksum.
    fn section(&mut self, tag: &[u8; 4], len: u64) -> Result<Vec<u8>> {
        let name = String::from_utf8_lossy(tag).trim().to_string();
        let at = self.offset;
        let head = self.bytes(12, &format!("the header of section {name}"))?;
        if &head[..4] != tag {
            return Err(self.corrupt(format!("expected section {name} at offset {at}, found {:?}", String::from_utf8_lossy(&head[..4]))));
        }
        let found = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        if found != len {
            return Err(self.corrupt(format!("section {name} has {found} bytes, the header implies {len}")));
        }
        let body = self.bytes(len, &format!("section {name}"))?;
        let crc = u32::from_le_bytes(self.bytes(4, &format!("the checksum of section {name}"))?.try_into().expect("4 bytes"));
        if crc32fast::hash(&body) != crc {
            return Err(self.corrupt(format!("section {name} (offset {at}) fails its checksum: the file is corrupted")));
        }
        Ok(body)
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Splits `n` length-prefixed strings off `b` (the section `what`).
fn strings(b: &[u8], n: usize, what: &str, corrupt: &dyn Fn(String) -> SearchError) -> Result<(Vec<String>, usize)> {
    let mut out = Vec::with_capacity(n.min(b.len() / 4));
    let mut at = 0;
    for i in 0..n {
        if at + 4 > b.len() {
            return Err(corrupt(format!("{what}: entry {i} runs past the section's end")));
        }
        let len = le_u32(b, at) as usize;
        at += 4;
        if len > b.len() - at {
            return Err(corrupt(format!("{what}: entry {i} runs past the section's end")));
        }
        let s = std::str::from_utf8(&b[at..at + len]).map_err(|_| corrupt(format!("{what}: entry {i} is not UTF-8")))?;
        if s.is_empty() || s.contains(['\n', '\r']) {
            return Err(corrupt(format!("{what}: entry {i} is empty or holds a line break")));
        }
        out.push(s.to_string());
        at += len;
    }
    Ok((out, at))
}

/// Opens an index file: every check of the module docs, then the caller's expectations.
pub(crate) fn open(path: &Path, expect: &Expect) -> Result<AnyIndex> {
    let file = File::open(path).map_err(|e| SearchError::Io { op: "open".into(), path: path.into(), source: e })?;
    let left = file.metadata().map_err(|e| SearchError::Io { op: "read".into(), path: path.into(), source: e })?.len();
    let mut inp = Input { r: BufReader::with_capacity(1 << 20, file), left, offset: 0, path };
    let corrupt = |reason: String| SearchError::Corrupt { path: path.into(), reason };

    let magic = inp.bytes(12, "the header").map_err(|_| corrupt("not a margin index file (too short for the header)".into()))?;
    if &magic[..8] != MAGIC {
        return Err(corrupt("not a margin index file (bad magic bytes)".into()));
    }
    let version = le_u32(&magic, 8);
    if version > VERSION {
        return Err(SearchError::NewerVersion { path: path.into(), found: version, supported: VERSION });
    }
    if version == 0 {
        return Err(corrupt("format version 0 does not exist".into()));
    }
    let fixed = inp.bytes(40, "the header")?;
    let fp_len = inp.bytes(4, "the header")?;
    let fp_len_bytes: [u8; 4] = fp_len.try_into().expect("4 bytes");
    let fp_len = u32::from_le_bytes(fp_len_bytes) as usize;
    if fp_len > MAX_FINGERPRINT {
        return Err(corrupt(format!("header: the model fingerprint claims {fp_len} bytes (at most {MAX_FINGERPRINT})")));
    }
    let fp = inp.bytes(fp_len as u64, "the model fingerprint")?;
    let crc = u32::from_le_bytes(inp.bytes(4, "the header checksum")?.try_into().expect("4 bytes"));
    let mut hh = crc32fast::Hasher::new();
    hh.update(&magic);
    hh.update(&fixed);
    hh.update(&fp_len_bytes);
    hh.update(&fp);
    if hh.finalize() != crc {
        return Err(corrupt("the header fails its checksum: the file is corrupted".into()));
    }
    let (kind, mcode, pcode, flags) = (fixed[0], fixed[1], fixed[2], fixed[3]);
    let dim = le_u32(&fixed, 4) as usize;
    let slots_u64 = u64::from_le_bytes(fixed[8..16].try_into().expect("8 bytes"));
    let (m, efc) = (le_u32(&fixed, 16) as usize, le_u32(&fixed, 20) as usize);
    let seed = u64::from_le_bytes(fixed[24..32].try_into().expect("8 bytes"));
    let (entry_slot, entry_level) = (le_u32(&fixed, 32), le_u32(&fixed, 36));
    let metric = metric::from_code(mcode).ok_or_else(|| corrupt(format!("header: unknown metric code {mcode}")))?;
    let precision = Precision::from_code(pcode).ok_or_else(|| corrupt(format!("header: unknown precision code {pcode}")))?;
    if kind > 1 || flags > 1 {
        return Err(corrupt(format!("header: unknown index kind {kind} or flags {flags}")));
    }
    if dim == 0 || dim > margin_max_dim() {
        return Err(corrupt(format!("header: dimension {dim} out of range 1..={}", margin_max_dim())));
    }
    if kind == 0 && precision != Precision::F32 {
        return Err(corrupt(format!("header: an exact index with {} storage", precision.name())));
    }
    let fingerprint = String::from_utf8(fp).map_err(|_| corrupt("header: the model fingerprint is not UTF-8".into()))?;
    // Cheapest possible slot is 4 (id length) + 1 (its id) + dim bytes: bounds the count by
    // the file's size before anything is sized by it.
    if slots_u64 > u64::from(u32::MAX) || slots_u64.saturating_mul(5 + dim as u64) > left {
        return Err(corrupt(format!("header: {slots_u64} items cannot fit in a file of {left} bytes")));
    }
    let slots = slots_u64 as usize;
    if let Some(d) = expect.dim
        && d != dim
    {
        return Err(SearchError::DimensionMismatch { input: path.display().to_string(), expected: d, found: dim });
    }
    if let Some(want) = expect.metric
        && want != metric
    {
        return Err(crate::error::invalid("metric", format!("{} holds a {} index, not {}", path.display(), metric.name(), want.name())));
    }

    // Ids: the section length is read from its own header, bounded by the file.
    let at = inp.offset;
    let ids_len = {
        let head = inp.bytes(12, "the header of section IDS")?;
        if &head[..4] != b"IDS " {
            return Err(corrupt(format!("expected section IDS at offset {at}")));
        }
        u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"))
    };
    let body = inp.bytes(ids_len, "section IDS")?;
    let crc = u32::from_le_bytes(inp.bytes(4, "the checksum of section IDS")?.try_into().expect("4 bytes"));
    if crc32fast::hash(&body) != crc {
        return Err(corrupt(format!("section IDS (offset {at}) fails its checksum: the file is corrupted")));
    }
    let (ids, used) = strings(&body, slots, "section IDS", &corrupt)?;
    if used != body.len() {
        return Err(corrupt(format!("section IDS has {} bytes after its {slots} ids", body.len() - used)));
    }
    let bits = inp.section(b"DEL ", slots.div_ceil(8) as u64)?;
    let removed: Vec<bool> = (0..slots).map(|s| bits[s / 8] >> (s % 8) & 1 == 1).collect();
    if slots % 8 != 0 && bits.last().is_some_and(|b| b >> (slots % 8) != 0) {
        return Err(corrupt("section DEL marks slots beyond the item count".into()));
    }
    let tags = if flags & 1 == 1 {
        let at = inp.offset;
        let head = inp.bytes(12, "the header of section TAGS")?;
        if &head[..4] != b"TAGS" {
            return Err(corrupt(format!("expected section TAGS at offset {at}")));
        }
        let len = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        let body = inp.bytes(len, "section TAGS")?;
        let crc = u32::from_le_bytes(inp.bytes(4, "the checksum of section TAGS")?.try_into().expect("4 bytes"));
        if crc32fast::hash(&body) != crc {
            return Err(corrupt(format!("section TAGS (offset {at}) fails its checksum: the file is corrupted")));
        }
        if body.len() < 4 {
            return Err(corrupt("section TAGS is too short".into()));
        }
        let n = le_u32(&body, 0) as usize;
        let (names, used) = strings(&body[4..], n, "section TAGS", &corrupt)?;
        let rest = &body[4 + used..];
        if rest.len() != 4 * slots {
            return Err(corrupt(format!("section TAGS: {} bytes of per-item tags for {slots} items", rest.len())));
        }
        let of_slot: Vec<u32> = rest.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        if let Some(s) = of_slot.iter().position(|&t| t as usize >= names.len()) {
            return Err(corrupt(format!("section TAGS: item {s} has tag {} of {}", of_slot[s], names.len())));
        }
        let lookup: std::collections::HashMap<String, u32> = names.iter().cloned().zip(0u32..).collect();
        if lookup.len() != names.len() {
            return Err(corrupt("section TAGS: a tag name appears twice".into()));
        }
        Some(Tags { names, lookup, of_slot })
    } else {
        None
    };

    let values = slots * dim;
    let vecs = inp.section(b"VECS", (values * precision.value_bytes()) as u64)?;
    let codes = match precision {
        Precision::F32 => {
            let mut v: Vec<f32> = Vec::new();
            crate::hugepages::reserve(&mut v, values);
            v.extend(vecs.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))));
            if slots > 0
                && let Some(f) = margin_linalg::rows::first_bad_row(&v, dim)
            {
                return Err(corrupt(format!("section VECS: unusable row ({f:?})")));
            }
            Codes::F32(v)
        }
        Precision::F16 => {
            let mut v: Vec<half::f16> = Vec::new();
            crate::hugepages::reserve(&mut v, values);
            v.extend(vecs.chunks_exact(2).map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes"))));
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(corrupt(format!("section VECS: item {} holds a non-finite value", i / dim)));
            }
            Codes::F16(v)
        }
        Precision::I8 => {
            let mut codes: Vec<i8> = Vec::new();
            crate::hugepages::reserve(&mut codes, values);
            codes.extend(vecs.iter().map(|&b| b as i8));
            let sc = inp.section(b"SCAL", 4 * slots as u64)?;
            let scales: Vec<f32> = sc.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
            if let Some(s) = scales.iter().position(|x| !(x.is_finite() && *x >= 0.0 && *x < 1e36)) {
                return Err(corrupt(format!("section SCAL: item {s} has scale {}", scales[s])));
            }
            Codes::I8 { codes, scales }
        }
    };
    let mut store = Store { metric, dim, codes, norms: Vec::new() };
    store.rebuild_norms();
    let cat = Catalog::from_loaded(&ids, removed, tags).map_err(|s| corrupt(format!("section IDS: id {:?} is live twice (slot {s})", ids[s])))?;
    drop(ids);
    let core = Core { fingerprint, store, cat };

    let index = if kind == 0 {
        AnyIndex::Flat(FlatIndex::from_core(core))
    } else {
        let params = HnswParams { m, ef_construction: efc, seed, threads: 0 };
        params.check().map_err(|e| corrupt(format!("header: {e}")))?;
        let levels = inp.section(b"LEVL", slots as u64)?;
        if let Some(s) = levels.iter().position(|&l| l > MAX_LEVEL) {
            return Err(corrupt(format!("section LEVL: item {s} has level {} (at most {MAX_LEVEL})", levels[s])));
        }
        let w0 = 1 + 2 * m;
        let raw0 = inp.section(b"LNK0", (4 * slots * w0) as u64)?;
        let links0: Vec<u32> = raw0.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let upper_words: usize = levels.iter().map(|&l| usize::from(l) * (1 + m)).sum();
        let rawu = inp.section(b"LNKU", (4 * upper_words) as u64)?;
        let upper: Vec<u32> = rawu.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        let check_lists = |words: &[u32], w: usize, cap: usize, what: &str| -> Result<()> {
            for (i, list) in words.chunks_exact(w).enumerate() {
                let n = list[0] as usize;
                if n > cap {
                    return Err(corrupt(format!("section {what}: list {i} claims {n} links (at most {cap})")));
                }
                if let Some(&bad) = list[1..=n].iter().find(|&&v| v as usize >= slots) {
                    return Err(corrupt(format!("section {what}: list {i} links to item {bad} of {slots}")));
                }
            }
            Ok(())
        };
        check_lists(&links0, w0, 2 * m, "LNK0")?;
        check_lists(&upper, 1 + m, m, "LNKU")?;
        // An upper list may only link items that exist on its level (the walk reads the
        // neighbour's list at that level).
        let mut at = 0;
        for (s, &l) in levels.iter().enumerate() {
            for level in 1..=usize::from(l) {
                let list = &upper[at..at + 1 + m];
                if let Some(&v) = list[1..=list[0] as usize].iter().find(|&&v| usize::from(levels[v as usize]) < level) {
                    return Err(corrupt(format!("section LNKU: item {s} links at level {level} to item {v}, which has level {}", levels[v as usize])));
                }
                at += 1 + m;
            }
        }
        let entry = if slots == 0 {
            None
        } else {
            let top = levels.iter().copied().max().unwrap_or(0);
            if entry_slot as usize >= slots || u32::from(levels[entry_slot as usize]) != entry_level || entry_level != u32::from(top) {
                return Err(corrupt(format!("header: entry point {entry_slot} at level {entry_level} is not a top-level item")));
            }
            Some((entry_slot, top))
        };
        AnyIndex::Hnsw(HnswIndex::from_parts(core, params, Graph::from_parts(m, levels, links0, upper, entry)))
    };
    if inp.left != 0 {
        return Err(corrupt(format!("{} bytes after the last section", inp.left)));
    }
    let core = match &index {
        AnyIndex::Flat(f) => &f.core,
        AnyIndex::Hnsw(h) => &h.core,
    };
    core.check_fingerprint(path, expect.fingerprint.as_deref())?;
    Ok(index)
}
