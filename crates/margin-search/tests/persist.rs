//! Saving, opening, adding, removing, and many readers of one opened index.

mod common;

use std::sync::Arc;

use margin_search::{AnyIndex, Expect, FlatIndex, HnswIndex, HnswParams, Ids, Index, Items, Metric, Precision, Rows, SearchParams, Spec};

fn tagged_items<'a>(c: &'a [f32], tags: &'a [String], ids: Option<Ids>) -> Items<'a> {
    Items { rows: Rows::new("base", c, 16), ids, tags: Some(tags) }
}

/// save → open → the same results, ids, tags and removals, for every backend and precision.
#[test]
fn save_then_open_gives_the_same_index() {
    let c = common::data(1200, 30, 16, 7);
    let tags: Vec<String> = (0..1200).map(|i| format!("t{}", i % 4)).collect();
    let ids = Ids::from_strings("ids", (0..1200).map(|i| format!("item-{i}")).collect()).unwrap();
    let dir = common::temp_dir("save-open");
    let q = Rows::new("q", &c.queries, 16);
    let mut indexes: Vec<(String, Box<dyn Index>)> = Vec::new();
    let spec = Spec { tagged: true, ..Spec::new(Metric::Cosine, 16, "model@1 (grey 28, inverted)") };
    indexes.push(("flat".into(), Box::new(FlatIndex::build(&spec, tagged_items(&c.base, &tags, Some(ids.clone()))).unwrap())));
    for p in Precision::ALL {
        let spec = Spec { precision: p, ..spec.clone() };
        let h = HnswIndex::build(&spec, HnswParams { m: 8, ef_construction: 40, seed: 2, threads: 2 }, tagged_items(&c.base, &tags, Some(ids.clone()))).unwrap();
        indexes.push((p.name().into(), Box::new(h)));
    }
    for (name, mut index) in indexes {
        index.remove(&["item-3", "item-500"]).unwrap();
        let path = dir.join(format!("{name}.mgi"));
        index.save(&path).unwrap();
        let opened = margin_search::open(&path, &Expect { fingerprint: Some("model@1 (grey 28, inverted)".into()), dim: Some(16), metric: Some(Metric::Cosine) }).unwrap();
        let o = opened.as_index();
        assert_eq!((o.len(), o.slots(), o.dim(), o.metric(), o.precision()), (index.len(), index.slots(), 16, Metric::Cosine, index.precision()), "{name}");
        for p in [SearchParams { ef: 40, tags: None }, SearchParams { ef: 40, tags: Some(vec!["t2".into()]) }] {
            assert_eq!(o.search(q, 8, &p).unwrap(), index.search(q, 8, &p).unwrap(), "{name} {p:?}");
        }
        assert_eq!(o.slot_of("item-3"), None);
        assert_eq!(o.slot_of("item-4"), Some(4));
        assert_eq!((o.id(7), o.tag(7)), ("item-7", Some("t3")));
        // Saving the opened index gives the same bytes.
        let again = dir.join(format!("{name}-again.mgi"));
        o.save(&again).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&again).unwrap(), "{name}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.contains(".tmp-")).collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Added items are found, removed ones never returned, a removed id can come back, and an
/// unknown id changes nothing; the saved file reflects each step.
#[test]
fn add_and_remove() {
    let c = common::data(1500, 20, 16, 8);
    let (first, second) = c.base.split_at(1000 * 16);
    let dir = common::temp_dir("add-remove");
    for hnsw in [false, true] {
        let spec = Spec::new(Metric::Euclidean, 16, "m");
        let mut index: Box<dyn Index> = if hnsw {
            Box::new(HnswIndex::build(&spec, HnswParams { m: 8, ef_construction: 50, seed: 1, threads: 1 }, Items::rows(Rows::new("first", first, 16))).unwrap())
        } else {
            Box::new(FlatIndex::build(&spec, Items::rows(Rows::new("first", first, 16))).unwrap())
        };
        index.add(Items::rows(Rows::new("second", second, 16))).unwrap();
        assert_eq!((index.len(), index.id(1200)), (1500, "1200"));
        // Each added row finds itself first.
        let got = index.search(Rows::new("q", &second[..160], 16), 1, &SearchParams { ef: 50, tags: None }).unwrap();
        for i in 0..10 {
            assert_eq!(got.get(i).0, [1000 + i as u32]);
        }
        assert_eq!(index.remove(&["1000", "1001", "5"]).unwrap(), 3);
        let e = index.remove(&["1002", "no-such-id"]).unwrap_err().to_string();
        assert_eq!(e, "id \"no-such-id\" is not in the index");
        assert_eq!(index.len(), 1497, "a failed removal removes nothing");
        let got = index.search(Rows::new("q", &second[..32], 16), 5, &SearchParams { ef: 50, tags: None }).unwrap();
        for i in 0..2 {
            assert!(!got.get(i).0.iter().any(|&s| s == 1000 || s == 1001 || s == 5), "{:?}", got.get(i));
        }
        // The removed id "5" comes back in a new slot.
        index.add(Items { rows: Rows::new("again", &first[5 * 16..6 * 16], 16), ids: Some(Ids::from_strings("again", vec!["5".into()]).unwrap()), tags: None }).unwrap();
        assert_eq!(index.slot_of("5"), Some(1500));
        let path = dir.join("i.mgi");
        index.save(&path).unwrap();
        let opened = margin_search::open(&path, &Expect::default()).unwrap();
        assert_eq!((opened.as_index().len(), opened.as_index().slot_of("5")), (1498, Some(1500)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Threads searching one opened index concurrently get the single-threaded answer.
#[test]
fn concurrent_readers_of_a_saved_index() {
    let c = common::data(3000, 64, 16, 9);
    let dir = common::temp_dir("readers");
    let path = dir.join("i.mgi");
    let spec = Spec { precision: Precision::I8, ..Spec::new(Metric::Euclidean, 16, "m") };
    HnswIndex::build(&spec, HnswParams { m: 10, ef_construction: 50, seed: 5, threads: 2 }, Items::rows(Rows::new("base", &c.base, 16))).unwrap().save(&path).unwrap();
    let index: Arc<AnyIndex> = Arc::new(margin_search::open(&path, &Expect::default()).unwrap());
    let p = SearchParams { ef: 32, tags: None };
    let want = index.as_index().search(Rows::new("q", &c.queries, 16), 10, &p).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (index, queries, p) = (Arc::clone(&index), c.queries.clone(), p.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for round in 0..5 {
                    let lo = ((t + round) % 4) * 16;
                    let r = index.as_index().search(Rows::new("q", &queries[lo * 16..(lo + 16) * 16], 16), 10, &p).unwrap();
                    out.push((lo, r));
                }
                out
            })
        })
        .collect();
    for h in handles {
        for (lo, r) in h.join().unwrap() {
            for i in 0..16 {
                assert_eq!(r.get(i), want.get(lo + i));
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
