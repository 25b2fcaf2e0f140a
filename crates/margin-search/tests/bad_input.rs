//! Every known bad input is a clear error naming the input and the rule, never a panic.

mod common;

use margin_search::{Expect, FlatIndex, HnswIndex, HnswParams, Ids, Index, Items, Metric, Precision, Rows, SearchParams, Spec};

fn hnsw(spec: &Spec, rows: &[f32], dim: usize) -> margin_search::Result<HnswIndex> {
    HnswIndex::build(spec, HnswParams { m: 8, ef_construction: 30, seed: 0, threads: 1 }, Items::rows(Rows::new("G.npy", rows, dim)))
}

fn err<T: std::fmt::Debug>(r: margin_search::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_vectors_and_queries() {
    let spec = Spec::new(Metric::Euclidean, 2, "m");
    let mut rows = vec![0.5f32; 20];
    rows[7] = f32::NAN;
    assert_eq!(err(hnsw(&spec, &rows, 2)), "G.npy: row 3, column 1 is NaN (all values must be finite)");
    assert_eq!(err(FlatIndex::build(&spec, Items::rows(Rows::new("G.npy", &rows, 2)))), "G.npy: row 3, column 1 is NaN (all values must be finite)");
    assert_eq!(err(hnsw(&spec, &[], 2)), "G.npy is empty: no rows");
    assert_eq!(err(hnsw(&spec, &[1.0; 5], 2)), "G.npy: 5 values cannot be split into rows of dimension 2");
    assert!(err(hnsw(&spec, &[3e20, 1.0], 2)).starts_with("G.npy: row 0 is too large"));
    assert_eq!(err(hnsw(&spec, &[1.0; 6], 3)), "dimension mismatch: G.npy has dimension 3 but the index has dimension 2");
    let f16 = Spec { precision: Precision::F16, ..spec.clone() };
    assert_eq!(err(hnsw(&f16, &[1.0, 1e5], 2)), "G.npy: row 0, column 1 is 100000, beyond f16's range (store the index as f32 or i8)");
    let i8flat = Spec { precision: Precision::I8, ..spec.clone() };
    assert_eq!(err(FlatIndex::new(&i8flat)), "invalid precision: the exact index stores f32 rows, not i8");
    assert!(err(HnswIndex::new(&spec, HnswParams { m: 1, ..HnswParams::default() })).contains("invalid M: 1"));

    let index = hnsw(&spec, &[0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 2).unwrap();
    let flat = FlatIndex::build(&spec, Items::rows(Rows::new("G.npy", &[0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 2))).unwrap();
    for ix in [&index as &dyn Index, &flat] {
        let q = Rows::new("Q.npy", &[0.0, 0.0], 2);
        assert_eq!(err(ix.search(q, 4, &SearchParams::default())), "k = 4 is larger than the 3 candidates in the index (live items passing the filter)");
        assert_eq!(err(ix.search(q, 0, &SearchParams::default())), "invalid k: must be at least 1");
        assert_eq!(err(ix.search(Rows::new("Q.npy", &[f32::INFINITY, 0.0], 2), 1, &SearchParams::default())), "Q.npy: row 0, column 0 is inf (all values must be finite)");
        assert_eq!(err(ix.search(Rows::new("Q.npy", &[0.0; 3], 3), 1, &SearchParams::default())), "dimension mismatch: Q.npy has dimension 3 but the index has dimension 2");
        assert_eq!(err(ix.search(Rows::new("Q.npy", &[], 2), 1, &SearchParams::default())), "Q.npy is empty: no rows");
        let p = SearchParams { ef: 10, tags: Some(vec!["a".into()]) };
        assert_eq!(err(ix.search(q, 1, &p)), "Q.npy: a tag filter was given, but the index has no tags");
    }
}

#[test]
fn bad_ids_and_tags() {
    let spec = Spec::new(Metric::Euclidean, 2, "m");
    let rows = [0.0f32, 1.0, 1.0, 0.0, 1.0, 1.0];
    let ids = Ids::parse("ids.txt", b"a\nb\n").unwrap();
    let e = err(FlatIndex::build(&spec, Items { rows: Rows::new("G.npy", &rows, 2), ids: Some(ids), tags: None }));
    assert_eq!(e, "ids.txt has 2 ids but G.npy has 3 rows");
    assert_eq!(err(Ids::parse("ids.txt", b"a\nb\na\n")), "ids.txt: line 3: duplicate id \"a\" (first on line 1)");
    assert_eq!(err(Ids::parse("ids.txt", b"a\r\n\r\nb\r\n")), "ids.txt: line 2: empty id (every line must hold one id)");
    let mut index = FlatIndex::build(&spec, Items { rows: Rows::new("G.npy", &rows, 2), ids: Some(Ids::parse("ids.txt", b"a\nb\nc").unwrap()), tags: None }).unwrap();
    let again = Items { rows: Rows::new("more.npy", &rows[..2], 2), ids: Some(Ids::parse("more.txt", b"b\n").unwrap()), tags: None };
    assert_eq!(err(index.add(again)), "more.npy: id \"b\" (row 0) is already in the index");
    assert_eq!(index.len(), 3, "a refused add changes nothing");
    let tags = vec!["x".to_string()];
    let tagged = Items { rows: Rows::new("more.npy", &rows[..2], 2), ids: None, tags: Some(&tags) };
    assert_eq!(err(index.add(tagged)), "more.npy: tags given, but the index was built without tags");
    let tspec = Spec { tagged: true, ..spec.clone() };
    assert_eq!(err(FlatIndex::build(&tspec, Items::rows(Rows::new("G.npy", &rows, 2)))), "G.npy: no tags given, but every item of this index has a tag");
    let two = vec!["x".to_string(), "y".to_string()];
    assert_eq!(err(FlatIndex::build(&tspec, Items { rows: Rows::new("G.npy", &rows, 2), ids: None, tags: Some(&two) })), "G.npy: 2 tags for 3 rows");
}

#[test]
fn bad_index_files() {
    let c = common::data(200, 1, 8, 3);
    let dir = common::temp_dir("bad-files");
    let path = dir.join("i.mgi");
    let spec = Spec::new(Metric::Euclidean, 8, "model-A");
    hnsw(&spec, &c.base, 8).unwrap().save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let p = dir.join("bad.mgi");
    let open = |bytes: &[u8], expect: &Expect| {
        std::fs::write(&p, bytes).unwrap();
        margin_search::open(&p, expect).map(|_| ()).unwrap_err().to_string()
    };
    let shown = p.display().to_string();
    assert_eq!(
        open(&good, &Expect { fingerprint: Some("model-B".into()), ..Expect::default() }),
        format!("{shown}: the index was built by model \"model-A\", not \"model-B\" (re-index with this model)")
    );
    assert_eq!(open(&good, &Expect { dim: Some(16), ..Expect::default() }), format!("dimension mismatch: {shown} has dimension 8 but the index has dimension 16"));
    assert!(open(&good, &Expect { metric: Some(Metric::Cosine), ..Expect::default() }).contains("holds a euclidean index, not cosine"));
    let truncated = open(&good[..good.len() - 100], &Expect::default());
    assert!(truncated.starts_with(&format!("{shown}: truncated: section LNKU needs")), "{truncated}");
    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 0x10;
    assert!(open(&flipped, &Expect::default()).contains("fails its checksum: the file is corrupted"));
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(open(&newer, &Expect::default()), format!("{shown}: index format version 7 is newer than this release reads (up to 1); upgrade margin"));
    assert_eq!(open(b"not an index at all", &Expect::default()), format!("{shown}: not a margin index file (bad magic bytes)"));
    assert_eq!(open(b"MARG", &Expect::default()), format!("{shown}: not a margin index file (too short for the header)"));
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(open(&longer, &Expect::default()), format!("{shown}: 1 bytes after the last section"));
    let missing = margin_search::open(&dir.join("none.mgi"), &Expect::default()).map(|_| ()).unwrap_err().to_string();
    assert!(missing.starts_with("cannot open ") && missing.contains("none.mgi"), "{missing}");
    assert!(FlatIndex::open(&path, &Expect::default()).unwrap_err().to_string().contains("holds an HNSW index, not an exact one"));
    std::fs::remove_dir_all(&dir).unwrap();
}
