//! Text inputs on the search commands: `--model <sentence-transformers folder> --input
//! FILE.txt|.jsonl` embeds through `margin embed`'s text path (all-MiniLM-L6-v2; the test
//! fails with install instructions when it is absent, as the other text tests do). Index
//! build / add / remove, search, verify and dedup (with the texts on the HTML page).

#[path = "bad_input/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "../../margin-models/tests/common/minilm.rs"]
#[allow(dead_code)]
mod minilm;

use std::process::{Command, Output};

use serde_json::Value;

fn margin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_margin")).args(args).env("RAYON_NUM_THREADS", "2").env_remove("RUST_BACKTRACE").output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = margin(args);
    assert!(out.status.success(), "margin {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const CORPUS: &str = "The cat sat on the mat.\n\
The cat sat on the mat!\n\
Stock markets fell sharply on Monday after the announcement.\n\
How do I reset my password?\n\
A recipe for tomato soup with basil.\n\
The train to Paris leaves at nine.\n\
how do i reset my password\n\
Quantum computers use qubits.\n";

#[test]
fn text_inputs_index_search_verify_and_dedup() {
    let model = minilm::minilm_folder();
    let m = model.to_str().unwrap();
    let dir = harness::scratch("search-text");
    let corpus = dir.join("t.txt");
    std::fs::write(&corpus, CORPUS).unwrap();
    let more = dir.join("more.jsonl");
    std::fs::write(&more, "\"A feline rested on the rug.\"\n{\"text\": \"Where is the train station?\"}\n").unwrap();
    let queries = dir.join("q.txt");
    std::fs::write(&queries, "I forgot my password, how can I change it?\nWhen does the Paris train depart?\n").unwrap();
    let (t, mo, q, idx) = (corpus.to_str().unwrap(), more.to_str().unwrap(), queries.to_str().unwrap(), dir.join("t.idx"));
    let idx = idx.to_str().unwrap();
    let id = |line: usize| format!("{t}:{line}");
    let said = ok(&["index", "build", "-q", "--model", m, "--input", t, "--out", idx, "--metric", "cosine"]);
    assert!(said.contains("indexed 8 items (384-d"), "{said}");
    let info: Value = serde_json::from_str(&ok(&["index", "info", idx, "--json"])).unwrap();
    assert!(info["fingerprint"].as_str().unwrap().starts_with("sentence-transformers modules.json sha256:"), "{info}");
    let v: Value = serde_json::from_str(&ok(&["search", "--index", idx, "--model", m, "--input", q, "-k", "2", "--json"])).unwrap();
    println!("{v}");
    assert_eq!(v[0]["query"], format!("{q}:1"));
    let top: Vec<&str> = v[0]["neighbors"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert!(top.contains(&id(4).as_str()) && top.contains(&id(7).as_str()), "the two password questions: {top:?}");
    assert_eq!(v[1]["neighbors"][0]["id"], id(6), "{v}");
    // add and remove by text file, the model checked.
    let said = ok(&["index", "add", "--index", idx, "--model", m, "--input", mo]);
    assert!(said.contains("added 2 items") && said.contains("(10 items)"), "{said}");
    let v: Value = serde_json::from_str(&ok(&["search", "--index", idx, "--model", m, "--input", mo, "-k", "1", "--json"])).unwrap();
    assert_eq!(v[1]["neighbors"][0]["id"], format!("{mo}:2"), "{v}");
    let said = ok(&["index", "remove", "--index", idx, "--input", mo, "--model", m]);
    assert!(said.contains("removed 2 items") && said.contains("(8 items left)"), "{said}");
    // verify: a re-punctuated sentence is the same at a cosine distance of 0.1, another is not.
    let said = ok(&["verify", "--model", m, "--input", t, &id(1), &id(2), "--metric", "cosine", "--threshold", "0.1"]);
    assert!(said.contains("same"), "{said}");
    let said = ok(&["verify", "--model", m, "--input", t, &id(1), &id(3), "--metric", "cosine", "--threshold", "0.1"]);
    assert!(said.contains("different"), "{said}");
    // A sentence-transformers folder has no calibrated thresholds: asked for.
    let out = margin(&["dedup", "--model", m, "--input", t, "--out", dir.join("g.json").to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("needs a threshold"), "{}", String::from_utf8_lossy(&out.stderr));
    let g = dir.join("g.json");
    let said = ok(&["dedup", "-q", "--model", m, "--input", t, "--metric", "cosine", "--threshold", "0.1", "--out", g.to_str().unwrap()]);
    assert!(said.contains("2 groups"), "{said}");
    let groups: Value = serde_json::from_slice(&std::fs::read(&g).unwrap()).unwrap();
    let pairs: Vec<(String, String)> = groups["groups"].as_array().unwrap().iter().map(|g| (g["representative"].as_str().unwrap().to_string(), g["members"][0]["id"].as_str().unwrap().to_string())).collect();
    assert_eq!(pairs, vec![(id(1), id(2)), (id(4), id(7))], "{groups}");
    let html = std::fs::read_to_string(dir.join("g.html")).unwrap();
    assert!(html.contains("<blockquote>The cat sat on the mat!</blockquote>") && html.contains("<blockquote>how do i reset my password</blockquote>"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}
