//! `margin index`, `search`, `verify` and `dedup` over precomputed embeddings: results
//! checked against distances computed here by hand (not by margin-search), the output
//! shapes the issue fixes, and the files kept whole.

#[path = "bad_input/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::process::Command;

use harness::{f32s, npy};
use serde_json::Value;

fn margin(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "margin {args:?} failed:\n{e}");
    (o, e)
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).display().to_string()
}

/// A seeded gallery: `n` rows of `dim` from a small LCG (the test's own generator).
fn gallery(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n * dim)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn euclid(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>().sqrt()
}

/// The k nearest rows of `q` by hand: (row, distance), ties by the smaller row.
fn brute(g: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<(usize, f64)> {
    let mut d: Vec<(usize, f64)> = g.chunks(dim).map(|r| euclid(r, q)).enumerate().collect();
    d.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    d.truncate(k);
    d
}

#[test]
fn build_search_json_matches_brute_force_for_both_kinds() {
    let dir = harness::scratch("search-json");
    let (n, dim, k) = (300, 8, 5);
    let mut g = gallery(n, dim, 1);
    // Rows 7 and 3 are copies of row 11: equal distances, so the tie order shows.
    let r11 = g[11 * dim..12 * dim].to_vec();
    g[7 * dim..8 * dim].copy_from_slice(&r11);
    g[3 * dim..4 * dim].copy_from_slice(&r11);
    std::fs::write(dir.join("g.npy"), npy("<f4", &[n, dim], &f32s(&g))).unwrap();
    let ids: String = (0..n).map(|i| format!("item-{i}\n")).collect();
    std::fs::write(dir.join("ids.txt"), ids).unwrap();
    let mut q = gallery(20, dim, 2);
    q[..dim].copy_from_slice(&r11);
    std::fs::write(dir.join("q.npy"), npy("<f4", &[20, dim], &f32s(&q))).unwrap();
    std::fs::write(dir.join("qids.txt"), (0..20).map(|i| format!("q{i}\n")).collect::<String>()).unwrap();
    for kind in ["flat", "hnsw"] {
        let idx = p(&dir, &format!("{kind}.idx"));
        margin(&["index", "build", "-q", "--embeddings", &p(&dir, "g.npy"), "--ids", &p(&dir, "ids.txt"), "--out", &idx, "--kind", kind, "--metric", "l2", "--threads", "1"]);
        let (out, _) = margin(&["search", "--index", &idx, "--queries", &p(&dir, "q.npy"), "-k", &k.to_string(), "--ef", "300", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let recs = v.as_array().unwrap();
        assert_eq!(recs.len(), 20);
        let mut hits = 0;
        for (qi, r) in recs.iter().enumerate() {
            assert_eq!(r["query"], qi, "{kind}: row number as the query without --query-ids");
            let nb = r["neighbors"].as_array().unwrap();
            assert_eq!(nb.len(), k);
            assert!(nb[0].get("match").is_none(), "no threshold, no match field");
            let want = brute(&g, dim, &q[qi * dim..(qi + 1) * dim], k);
            for (j, x) in nb.iter().enumerate() {
                let d = x["distance"].as_f64().unwrap();
                if j > 0 {
                    assert!(d >= nb[j - 1]["distance"].as_f64().unwrap(), "nearest first");
                }
                hits += usize::from(want.iter().any(|(row, _)| x["id"] == format!("item-{row}")));
                if kind == "flat" {
                    assert_eq!(x["id"], format!("item-{}", want[j].0), "{kind} query {qi} rank {j}");
                    assert!((d - want[j].1).abs() < 1e-3, "{d} vs {}", want[j].1);
                }
            }
        }
        assert!(hits as f64 >= 0.95 * (20 * k) as f64, "{kind}: recall {hits}/{}", 20 * k);
        // Query 0 is row 11: the three copies at distance 0, in slot order.
        let ids0: Vec<&str> = recs[0]["neighbors"].as_array().unwrap()[..3].iter().map(|x| x["id"].as_str().unwrap()).collect();
        assert_eq!(ids0, ["item-3", "item-7", "item-11"], "{kind}: ties by index");
    }
    // Query ids, a threshold → "match" per neighbour; JSON Lines and CSV carry the same.
    let idx = p(&dir, "flat.idx");
    let args = ["search", "--index", &idx, "--queries", &p(&dir, "q.npy"), "--query-ids", &p(&dir, "qids.txt"), "-k", "3", "--threshold", "0.5"];
    let (out, _) = margin(&[&args[..], &["--json"]].concat());
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["query"], "q0");
    for r in v.as_array().unwrap() {
        for x in r["neighbors"].as_array().unwrap() {
            assert_eq!(x["match"].as_bool().unwrap(), x["distance"].as_f64().unwrap() <= 0.5);
        }
    }
    let (lines, _) = margin(&[&args[..], &["--jsonl"]].concat());
    let lines: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, *v.as_array().unwrap());
    let (csv, _) = margin(&[&args[..], &["--csv"]].concat());
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "query,rank,id,distance,match");
    assert_eq!(rows.len(), 1 + 20 * 3);
    assert!(rows[1].starts_with("q0,1,item-3,0,true"), "{}", rows[1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn add_remove_info_and_a_failed_add_leaves_the_file_whole() {
    let dir = harness::scratch("search-edit");
    let dim = 4;
    let g = gallery(50, dim, 3);
    std::fs::write(dir.join("g.npy"), npy("<f4", &[50, dim], &f32s(&g))).unwrap();
    let idx = p(&dir, "g.idx");
    margin(&["index", "build", "-q", "--embeddings", &p(&dir, "g.npy"), "--out", &idx, "--kind", "hnsw", "--precision", "f16", "--fingerprint", "test-model"]);
    let extra = vec![9.0f32, 9.0, 9.0, 9.0];
    std::fs::write(dir.join("x.npy"), npy("<f4", &[1, dim], &f32s(&extra))).unwrap();
    std::fs::write(dir.join("xids.txt"), "new\n").unwrap();
    margin(&["index", "add", "--index", &idx, "--embeddings", &p(&dir, "x.npy"), "--ids", &p(&dir, "xids.txt")]);
    let (out, _) = margin(&["search", "--index", &idx, "--queries", &p(&dir, "x.npy"), "-k", "1", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["neighbors"][0]["id"], "new");
    let before = std::fs::read(&idx).unwrap();
    // Adding the same id again fails and leaves the file byte for byte.
    let st = Command::new(env!("CARGO_BIN_EXE_margin")).args(["index", "add", "--index", &idx, "--embeddings", &p(&dir, "x.npy"), "--ids", &p(&dir, "xids.txt")]).output().unwrap();
    assert!(!st.status.success());
    assert_eq!(std::fs::read(&idx).unwrap(), before);
    margin(&["index", "remove", "--index", &idx, "--id", "new", "--id", "0"]);
    let (out, _) = margin(&["search", "--index", &idx, "--queries", &p(&dir, "x.npy"), "-k", "49", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = v[0]["neighbors"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"new") && !ids.contains(&"0") && ids.len() == 49, "{ids:?}");
    let (info, _) = margin(&["index", "info", &idx, "--json"]);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!((info["items"].as_u64(), info["removed"].as_u64(), info["dim"].as_u64()), (Some(49), Some(2), Some(4)));
    assert_eq!((info["kind"].as_str(), info["precision"].as_str(), info["fingerprint"].as_str()), (Some("hnsw"), Some("f16"), Some("test-model")));
    let (text, _) = margin(&["index", "info", &idx]);
    assert!(text.contains("hnsw index, 49 items (2 removed)") && text.contains("test-model"), "{text}");
    // No temporary file is left beside the index.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.contains(".tmp")).collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_two_items_and_a_pairs_file() {
    let dir = harness::scratch("search-verify");
    let g = [0.0f32, 0.0, 0.3, 0.4, 3.0, 4.0];
    std::fs::write(dir.join("g.npy"), npy("<f4", &[3, 2], &f32s(&g))).unwrap();
    std::fs::write(dir.join("ids.txt"), "a\nb\nc\n").unwrap();
    let e = p(&dir, "g.npy");
    let i = p(&dir, "ids.txt");
    let (out, _) = margin(&["verify", "--embeddings", &e, "--ids", &i, "a", "b", "--threshold", "0.6"]);
    assert!(out.contains("threshold 0.6 (from --threshold)") && out.contains("a  b  distance 0.500000  same"), "{out}");
    std::fs::write(dir.join("p.csv"), "left,right\na,b\na,c\n\"b\",c\n").unwrap();
    let (out, _) = margin(&["verify", "--embeddings", &e, "--ids", &i, "--pairs", &p(&dir, "p.csv"), "--threshold", "0.6", "--json"]);
    let v: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(v.len(), 3);
    assert_eq!((v[0]["match"].as_bool(), v[1]["match"].as_bool(), v[2]["match"].as_bool()), (Some(true), Some(false), Some(false)));
    assert!((v[1]["distance"].as_f64().unwrap() - 5.0).abs() < 1e-9);
    assert_eq!(v[2]["threshold_source"], "--threshold");
    // Cosine: 1 − cos; row numbers without --ids.
    let (out, _) = margin(&["verify", "--embeddings", &e, "1", "2", "--metric", "cosine", "--threshold", "0.01", "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["distance"].as_f64().unwrap().abs() < 1e-7 && v["match"] == true, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dedup_groups_planted_duplicates_without_chaining() {
    let dir = harness::scratch("search-dedup");
    let dim = 16;
    let n = 400;
    let mut g = gallery(n, dim, 5);
    // Plant: rows 100..110 are near copies of rows 0..10 (jitter 1e-3), rows 200..205 exact
    // copies of rows 20..25; a chain 300 → 301 → 302 of steps 0.06 (threshold 0.1).
    let jitter = gallery(10, dim, 6);
    for i in 0..10 {
        for c in 0..dim {
            g[(100 + i) * dim + c] = g[i * dim + c] + 1e-3 * jitter[i * dim + c];
        }
    }
    for i in 0..5 {
        let r = g[(20 + i) * dim..(21 + i) * dim].to_vec();
        g[(200 + i) * dim..(201 + i) * dim].copy_from_slice(&r);
    }
    for s in 1..3 {
        for c in 0..dim {
            g[(300 + s) * dim + c] = g[300 * dim + c] + if c == 0 { 0.06 * s as f32 } else { 0.0 };
        }
    }
    std::fs::write(dir.join("g.npy"), npy("<f4", &[n, dim], &f32s(&g))).unwrap();
    std::fs::write(dir.join("ids.txt"), (0..n).map(|i| format!("doc {i} <b>\n")).collect::<String>()).unwrap();
    let out = p(&dir, "groups.json");
    let (said, _) = margin(&["dedup", "-q", "--embeddings", &p(&dir, "g.npy"), "--ids", &p(&dir, "ids.txt"), "--threshold", "0.1", "--out", &out]);
    assert!(said.contains("from --threshold"), "{said}");
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["threshold"], 0.1);
    assert_eq!(v["threshold_source"], "--threshold");
    assert!(v["rule"].as_str().unwrap().contains("greedy representatives"));
    let groups = v["groups"].as_array().unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for gr in groups {
        for m in gr["members"].as_array().unwrap() {
            pairs.push((gr["representative"].as_str().unwrap().into(), m["id"].as_str().unwrap().into()));
        }
    }
    pairs.sort();
    let mut want: Vec<(String, String)> = (0..10).map(|i| (format!("doc {i} <b>"), format!("doc {} <b>", 100 + i))).collect();
    want.extend((0..5).map(|i| (format!("doc {} <b>", 20 + i), format!("doc {} <b>", 200 + i))));
    // The chain: 301 joins 300; 302 is 0.12 from 300 and only 0.06 from 301 (not a
    // representative), so it starts its own group... of one.
    want.push(("doc 300 <b>".into(), "doc 301 <b>".into()));
    want.sort();
    assert_eq!(pairs, want);
    assert_eq!(v["singletons"].as_u64().unwrap() as usize, n - 2 * 15 - 2);
    let html = std::fs::read_to_string(dir.join("groups.html")).unwrap();
    assert!(html.contains("doc 0 &lt;b&gt;") && !html.contains("doc 0 <b>"), "ids are escaped in the page");
    let _ = std::fs::remove_dir_all(&dir);
}
