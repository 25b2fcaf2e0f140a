//! The text evaluation protocols end to end on small files with a fake embedder (bag of
//! hashed words): the closed-set permission and leakage checks, the out-of-scope path,
//! the open-set intent split, and `metrics.json` naming its protocol. The real encoder's
//! figures are measured by `examples/text_frozen.rs`, not asserted here.

use std::path::PathBuf;

use margin_train::text_eval::{TextData, TextProtocol, evaluate_sts, evaluate_text};

const DIM: usize = 32;

/// Each word sets one of DIM coordinates (its first letter), L2-normalised.
fn bag(texts: &[String]) -> Result<Vec<f32>, String> {
    let mut out = vec![0f32; texts.len() * DIM];
    for (i, t) in texts.iter().enumerate() {
        let row = &mut out[i * DIM..(i + 1) * DIM];
        for w in t.split_whitespace() {
            row[(w.as_bytes()[0] as usize) % DIM] += 1.0;
        }
        row[DIM - 1] += 0.01;
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= n);
    }
    Ok(out)
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-text-protocols-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Intents a..f, utterances made of words starting with the intent's letter; the
/// out-of-scope queries use letters no intent uses.
fn mini_clinc(shared: bool) -> String {
    let utt = |c: char, i: usize| format!("{c}{i} {c}x{i} {c}y");
    let rows = |range: std::ops::Range<usize>| {
        let mut v = Vec::new();
        for c in ['a', 'b', 'c', 'd', 'e', 'f'] {
            for i in range.clone() {
                v.push(format!("[\"{}\", \"{c}\"]", utt(c, i)));
            }
        }
        v.join(", ")
    };
    let test = if shared { format!("{}, [\"{}\", \"a\"]", rows(20..24), utt('a', 0)) } else { rows(20..24) };
    let oos = |r: std::ops::Range<usize>| r.map(|i| format!("[\"q{i} r{i} s\", \"oos\"]")).collect::<Vec<_>>().join(", ");
    format!(
        "{{\"train\": [{}], \"val\": [{}], \"test\": [{test}], \"oos_train\": [{}], \"oos_val\": [{}], \"oos_test\": [{}]}}",
        rows(0..10),
        rows(10..14),
        oos(0..3),
        oos(3..8),
        oos(8..20)
    )
}

#[test]
fn closed_set_needs_permission_refuses_shared_utterances_and_detects_out_of_scope() {
    let d = scratch("closed");
    std::fs::write(d.join("shared.json"), mini_clinc(true)).unwrap();
    std::fs::write(d.join("clean.json"), mini_clinc(false)).unwrap();
    let data = |f: &str| TextData::Clinc150 { path: d.join(f) };
    let no = TextProtocol::ClosedSet { allow_shared_intents: false, drop_shared_utterances: false };
    let e = evaluate_text(&data("clean.json"), &no, DIM, &mut bag).unwrap_err().to_string();
    assert!(e.contains("eval.allow_shared_intents") && e.contains("open-set"), "{e}");
    let yes = TextProtocol::ClosedSet { allow_shared_intents: true, drop_shared_utterances: false };
    let e = evaluate_text(&data("shared.json"), &yes, DIM, &mut bag).unwrap_err().to_string();
    assert!(e.contains("leakage") && e.contains("1 utterance") && e.contains("#train:1"), "{e}");
    let drop = TextProtocol::ClosedSet { allow_shared_intents: true, drop_shared_utterances: true };
    let m = evaluate_text(&data("shared.json"), &drop, DIM, &mut bag).unwrap();
    assert_eq!((m.removed_shared_utterances, m.n_train_intents, m.n_test_intents), (1, 6, 6));
    let c = m.classification.clone().unwrap();
    assert_eq!((c.n_queries, c.nearest_neighbor_accuracy, c.centroid_accuracy), (24, 1.0, 1.0));
    assert_eq!(m.retrieval.precision_at_1, 1.0);
    let oos = m.out_of_scope.clone().unwrap();
    assert_eq!((oos.test.auroc, oos.test.fpr_at_95_tpr, oos.test.n_out_of_scope), (1.0, 0.0, 12));
    assert_eq!((oos.val.accuracy, oos.test_at_val_threshold.accuracy), (1.0, 1.0));
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["protocol"]["protocol"], "closed-set");
    assert_eq!(json["data"]["kind"], "clinc150");
}

#[test]
fn open_set_holds_out_intents_and_labelled_tables_share_classes() {
    let d = scratch("open");
    std::fs::write(d.join("c.json"), mini_clinc(false)).unwrap();
    let open = TextProtocol::OpenSet { test_fraction: 0.5, seed: 3 };
    let m = evaluate_text(&TextData::Clinc150 { path: d.join("c.json") }, &open, DIM, &mut bag).unwrap();
    assert_eq!((m.n_train_intents, m.n_test_intents, m.retrieval.n_queries), (3, 3, 12));
    assert!(m.classification.is_none() && m.out_of_scope.is_none());
    assert_eq!(serde_json::to_value(&m).unwrap()["protocol"]["protocol"], "open-set");
    // A labelled pair of CSVs (BANKING77's layout): the test file's classes in another order.
    std::fs::write(d.join("train.csv"), "text,category\naa ab,a\nba bb,b\nac ad,a\nbc bd,b\n").unwrap();
    std::fs::write(d.join("test.csv"), "text,category\nbe bf,b\nae af,a\nbg bh,b\nag ah,a\n").unwrap();
    let data = TextData::Labelled { train: d.join("train.csv"), test: d.join("test.csv"), text_column: "text".into(), label_column: "category".into() };
    let closed = TextProtocol::ClosedSet { allow_shared_intents: true, drop_shared_utterances: false };
    let m = evaluate_text(&data, &closed, DIM, &mut bag).unwrap();
    assert_eq!(m.classification.unwrap().nearest_neighbor_accuracy, 1.0);
    // A label column that does not exist is named.
    let bad = TextData::Labelled { train: d.join("train.csv"), test: d.join("test.csv"), text_column: "text".into(), label_column: "intent".into() };
    let e = evaluate_text(&bad, &closed, DIM, &mut bag).unwrap_err().to_string();
    assert!(e.contains("train.csv") && e.contains("no column \"intent\""), "{e}");
}

#[test]
fn sts_spearman_follows_the_scores() {
    let d = scratch("sts");
    // Pair i shares i of 4 words: cosine grows with i, as the score does → ρ = 1.
    let rows: Vec<String> = (0..5)
        .map(|i| {
            let b: Vec<String> = (0..4).map(|w| if w < i { format!("{}w", (b'a' + w as u8) as char) } else { format!("{}z", (b'm' + w as u8) as char) }).collect();
            format!("g\tf\t2012\t{i}\t{i}.0\taw bw cw dw\t{}", b.join(" "))
        })
        .collect();
    std::fs::write(d.join("sts.csv"), rows.join("\n")).unwrap();
    let m = evaluate_sts(&d.join("sts.csv"), DIM, &mut bag).unwrap();
    assert_eq!(m.n_pairs, 5);
    assert!((m.spearman_cosine - 1.0).abs() < 1e-12, "{}", m.spearman_cosine);
}
