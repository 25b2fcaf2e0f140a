//! The project's fuzzing convention for CI: a stable replay of a committed corpus of damaged
//! index and ids files (`tests/corpus/`, each with the words its error must contain, in
//! `MANIFEST.tsv`), and a seeded mutation loop (byte flips, truncations, field rewrites with
//! the checksums recomputed so the content checks behind them are reached) asserting that
//! opening never panics and that whatever opens can be searched.
//!
//! The corpus is made by the ignored test `write_corpus` (`cargo test --profile checked -p
//! margin-search --test fuzz -- --ignored write_corpus`) from a small seeded index; rerun it
//! when the format's version changes.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use margin_search::{Expect, HnswIndex, HnswParams, Ids, Index, Items, Metric, Precision, Rows, SearchParams, Spec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// A small tagged index's file.
fn sample(precision: Precision, metric: Metric) -> Vec<u8> {
    let c = common::data(20, 0, 4, 11);
    let tags: Vec<String> = (0..20).map(|i| ["a", "b"][i % 2].to_string()).collect();
    let spec = Spec { precision, tagged: true, ..Spec::new(metric, 4, "model-x") };
    let mut ix = HnswIndex::build(&spec, HnswParams { m: 2, ef_construction: 8, seed: 1, threads: 1 }, Items { rows: Rows::new("base", &c.base, 4), ids: None, tags: Some(&tags) }).unwrap();
    ix.remove(&["3"]).unwrap();
    let dir = common::temp_dir(&format!("sample-{}-{metric}", precision.name()));
    let p = dir.join("s.mgi");
    ix.save(&p).unwrap();
    let b = std::fs::read(&p).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    b
}

/// `(tag, body start, body len)` of each section, walking the file as the format lays it out.
fn sections(b: &[u8]) -> (usize, Vec<([u8; 4], usize, usize)>) {
    let fp = u32::from_le_bytes(b[52..56].try_into().unwrap()) as usize;
    let header_end = 56 + fp + 4;
    let mut out = Vec::new();
    let mut at = header_end;
    while at + 12 <= b.len() {
        let tag: [u8; 4] = b[at..at + 4].try_into().unwrap();
        let len = u64::from_le_bytes(b[at + 4..at + 12].try_into().unwrap()) as usize;
        if at + 12 + len + 4 > b.len() {
            break;
        }
        out.push((tag, at + 12, len));
        at += 12 + len + 4;
    }
    (header_end, out)
}

/// Recomputes the header's and every section's checksum.
fn fix_checksums(b: &mut [u8]) {
    if b.len() < 60 {
        return;
    }
    let (header_end, secs) = sections(b);
    if header_end > b.len() {
        return;
    }
    let crc = crc32fast::hash(&b[..header_end - 4]);
    b[header_end - 4..header_end].copy_from_slice(&crc.to_le_bytes());
    for (_, start, len) in secs {
        let crc = crc32fast::hash(&b[start..start + len]);
        b[start + len..start + len + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

fn body<'a>(b: &'a mut [u8], tag: &[u8; 4]) -> &'a mut [u8] {
    let (_, secs) = sections(b);
    let (_, start, len) = *secs.iter().find(|s| &s.0 == tag).expect("section");
    &mut b[start..start + len]
}

/// Opens `bytes` as an index file: the error message, or `None` when it opened (and was
/// searched without panicking).
fn try_open(path: &Path, bytes: &[u8]) -> Option<String> {
    std::fs::write(path, bytes).unwrap();
    match margin_search::open(path, &Expect::default()) {
        Err(e) => Some(e.to_string()),
        Ok(ix) => {
            let ix = ix.as_index();
            if ix.len() > 0 {
                let q = vec![0.25f32; ix.dim()];
                let _ = ix.search(Rows::new("q", &q, ix.dim()), 1, &SearchParams { ef: 8, tags: Some(vec!["a".into()]) });
                let _ = ix.search(Rows::new("q", &q, ix.dim()), ix.len().min(3), &SearchParams::default());
            }
            None
        }
    }
}

#[test]
#[ignore = "regenerates the committed corpus"]
fn write_corpus() {
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    let good = sample(Precision::F32, Metric::Euclidean);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push(("empty.mgi", Vec::new(), "not a margin index file (too short for the header)"));
    cases.push(("bad_magic.mgi", b"PK\x03\x04 this is a zip, not an index".to_vec(), "bad magic bytes"));
    cases.push(("truncated_header.mgi", good[..30].to_vec(), "truncated: the header needs 40 bytes at offset 12"));
    let (_, secs) = sections(&good);
    let vecs = secs.iter().find(|s| &s.0 == b"VECS").unwrap();
    cases.push(("truncated_section.mgi", good[..vecs.1 + vecs.2 / 2].to_vec(), "truncated: section VECS needs"));
    let mut b = good.clone();
    b[vecs.1 + 5] ^= 0x40;
    cases.push(("flipped_vecs.mgi", b, "section VECS (offset"));
    let mut b = good.clone();
    b[20] ^= 0x01;
    cases.push(("flipped_header.mgi", b, "the header fails its checksum"));
    let mut b = good.clone();
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    cases.push(("newer_version.mgi", b, "index format version 2 is newer than this release reads (up to 1); upgrade margin"));
    let mut b = good.clone();
    body(&mut b, b"LNK0")[4..8].copy_from_slice(&999u32.to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("link_out_of_range.mgi", b, "section LNK0: list 0 links to item 999 of 20"));
    let mut b = good.clone();
    body(&mut b, b"LNK0")[..4].copy_from_slice(&77u32.to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("count_over_capacity.mgi", b, "section LNK0: list 0 claims 77 links (at most 4)"));
    let mut b = good.clone();
    // Ids are "0".."19": make slot 1's id "0" too (both live).
    body(&mut b, b"IDS ")[9] = b'0';
    fix_checksums(&mut b);
    cases.push(("duplicate_live_id.mgi", b, "section IDS: id \"0\" is live twice (slot 1)"));
    let mut b = good.clone();
    body(&mut b, b"VECS")[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("nan_vector.mgi", b, "section VECS: unusable row"));
    let mut b = good.clone();
    b.extend_from_slice(b"junk");
    cases.push(("trailing_bytes.mgi", b, "4 bytes after the last section"));
    let mut b = good.clone();
    b[44..48].copy_from_slice(&5000u32.to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("bad_entry_point.mgi", b, "header: entry point 5000"));
    let mut b = good.clone();
    b[20..28].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("huge_count.mgi", b, "header: 1099511627776 items cannot fit in a file of"));
    let mut b = good.clone();
    body(&mut b, b"TAGS")[0..4].copy_from_slice(&1u32.to_le_bytes());
    fix_checksums(&mut b);
    cases.push(("tag_table_short.mgi", b, "section TAGS"));
    let mut b = good.clone();
    {
        // The first upper list's first link, pointed at an item of level 0.
        let (_, secs) = sections(&b);
        let levl = secs.iter().find(|s| &s.0 == b"LEVL").unwrap();
        let low = b[levl.1..levl.1 + levl.2].iter().position(|&l| l == 0).unwrap() as u32;
        let up = body(&mut b, b"LNKU");
        up[0..4].copy_from_slice(&1u32.to_le_bytes());
        up[4..8].copy_from_slice(&low.to_le_bytes());
    }
    fix_checksums(&mut b);
    cases.push(("upper_link_to_lower_level.mgi", b, "which has level 0"));
    let mut manifest = String::from("# file\texpected words of the error (the replay test asserts each)\n");
    for (name, bytes, words) in &cases {
        std::fs::write(dir.join(name), bytes).unwrap();
        manifest.push_str(&format!("{name}\t{words}\n"));
    }
    for (name, bytes, words) in [
        ("ids_duplicate.txt", &b"cat\r\ndog\r\ncat\r\n"[..], "line 3: duplicate id \"cat\" (first on line 1)"),
        ("ids_empty_line.txt", b"cat\n\ndog\n", "line 2: empty id"),
        ("ids_not_utf8.txt", b"cat\ndo\xffg\n", "line 2: not UTF-8"),
        ("ids_empty.txt", b"", "is empty: no ids"),
        ("ids_only_newline.txt", b"\n", "is empty: no ids"),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
        manifest.push_str(&format!("{name}\t{words}\n"));
    }
    std::fs::write(dir.join("MANIFEST.tsv"), manifest).unwrap();
}

/// Every committed damaged file gives its recorded error, never a panic.
#[test]
fn corpus_replay() {
    let dir = corpus();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("tests/corpus/MANIFEST.tsv");
    let mut n = 0;
    for line in manifest.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, words) = line.split_once('\t').expect("name<TAB>words");
        let path = dir.join(name);
        let msg = if name.ends_with(".txt") {
            Ids::parse(name, &std::fs::read(&path).unwrap()).map(|_| ()).unwrap_err().to_string()
        } else {
            margin_search::open(&path, &Expect::default()).map(|_| ()).unwrap_err().to_string()
        };
        assert!(msg.contains(words), "{name}: {msg:?} does not contain {words:?}");
        if !name.ends_with(".txt") {
            assert!(msg.contains(name), "{name}: the error does not name the file: {msg}");
        }
        n += 1;
    }
    assert!(n >= 20, "the corpus has {n} cases");
}

/// 1,500 seeded damages of three index files and 500 of an ids file: no panic, and whatever
/// opens is searchable.
#[test]
fn seeded_mutations_never_panic() {
    let dir = common::temp_dir("mutations");
    let path = dir.join("m.mgi");
    let samples = [sample(Precision::F32, Metric::Euclidean), sample(Precision::I8, Metric::Cosine), sample(Precision::F16, Metric::Dot)];
    let mut rng = ChaCha8Rng::seed_from_u64(20261201);
    let (mut opened, mut refused) = (0, 0);
    for round in 0..1500 {
        let mut b = samples[round % 3].clone();
        match rng.random_range(0..4) {
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
            }
            1 => b.truncate(rng.random_range(0..b.len())),
            2 => {
                // A field rewritten and every checksum fixed: the content checks must catch it.
                let i = rng.random_range(0..b.len().saturating_sub(4));
                let v: u32 = match rng.random_range(0..4) {
                    0 => rng.random(),
                    1 => rng.random_range(0..64),
                    2 => u32::MAX,
                    _ => 0,
                };
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
                fix_checksums(&mut b);
            }
            _ => {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
                fix_checksums(&mut b);
            }
        }
        match catch_unwind(AssertUnwindSafe(|| try_open(&path, &b))) {
            Ok(Some(_)) => refused += 1,
            Ok(None) => opened += 1,
            Err(_) => panic!("round {round}: opening a damaged file panicked"),
        }
    }
    assert!(refused > 1000, "only {refused} of 1500 damaged files refused ({opened} opened)");
    let ids = b"alpha\r\nbeta\ngamma\ndelta\r\n".to_vec();
    for round in 0..500 {
        let mut b = ids.clone();
        let i = rng.random_range(0..b.len());
        b[i] = [b'\n', b'\r', 0xff, b'a', 0xc3][rng.random_range(0..5)];
        if round % 5 == 0 {
            b.truncate(rng.random_range(0..b.len()));
        }
        let r = catch_unwind(|| Ids::parse("ids.txt", &b).map(|ids| ids.len()));
        assert!(r.is_ok(), "round {round}: parsing ids panicked");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
