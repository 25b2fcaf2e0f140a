//! Agreement with pytorch-metric-learning 2.9 on every miner case of
//! `../shared/golden/pml_golden.json`: the mined tuples are equal as sorted
//! multisets, and the loss on them and its gradient agree to 1e-9 (f64).

mod common;

use common::*;
use margin::{
    Batch, BatchHardMiner, ContrastiveLossConfig, CosineSimilarity, Distance, LpDistance, MultiSimilarityMiner, Power,
    TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples,
};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/golden/pml_golden.json");
    let text = std::fs::read_to_string(path).expect("../shared/golden/pml_golden.json is readable");
    serde_json::from_str(&text).expect("valid JSON")
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn distance_of(d: &Value) -> Distance {
    let kw = &d["kwargs"];
    match d["class"].as_str().unwrap() {
        "LpDistance" => Distance::Lp(LpDistance {
            power: if kw["power"].as_i64() == Some(2) { Power::SquaredEuclidean } else { Power::Euclidean },
            normalize: kw["normalize_embeddings"].as_bool().unwrap(),
        }),
        "CosineSimilarity" => Distance::Cosine(CosineSimilarity),
        other => panic!("unknown distance {other}"),
    }
}

fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[test]
fn every_miner_pml_case_agrees_in_tuples_value_gradient_and_counts() {
    let g = golden();
    let mut checked = Vec::new();
    for case in g["cases"].as_array().unwrap() {
        if case["miner"].is_null() {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let emb = rows(&case["embeddings"]);
        let labels: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let x = tensor64(&emb);
        let miner_distance = distance_of(&case["miner"]["distance"]);
        let loss_distance = distance_of(&case["distance"]);
        let mkw = &case["miner"]["kwargs"];
        let lkw = &case["loss"]["kwargs"];
        let mined = &case["mined"];
        let out = match case["miner"]["class"].as_str().unwrap() {
            class @ ("BatchHardMiner" | "TripletMarginMiner") => {
                let m = if class == "BatchHardMiner" {
                    BatchHardMiner::new(miner_distance).mine(&x, &labels, None).unwrap()
                } else {
                    let kind = match mkw["type_of_triplets"].as_str().unwrap() {
                        "all" => TripletType::All,
                        "hard" => TripletType::Hard,
                        "semihard" => TripletType::Semihard,
                        "easy" => TripletType::Easy,
                        other => panic!("unknown type {other}"),
                    };
                    TripletMarginMiner::new(mkw["margin"].as_f64().unwrap(), kind)
                        .with_distance(miner_distance)
                        .mine(&x, &labels, None)
                        .unwrap()
                };
                let ours: Vec<(usize, usize, usize)> = m.triplets.iter().collect();
                let (a, p, n) = (indices(&mined["a"]), indices(&mined["p"]), indices(&mined["n"]));
                let theirs: Vec<(usize, usize, usize)> = (0..a.len()).map(|i| (a[i], p[i], n[i])).collect();
                assert_eq!(sorted(&ours), sorted(&theirs), "{name}: mined triplets");
                assert_eq!(m.stats.num_triplets, theirs.len(), "{name}: stats count");
                TripletMarginLossConfig::new()
                    .with_margin(lkw["margin"].as_f64().unwrap())
                    .with_distance(loss_distance)
                    .init()
                    .unwrap()
                    .forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&m.triplets))
                    .unwrap()
            }
            "MultiSimilarityMiner" => {
                let m = MultiSimilarityMiner { epsilon: mkw["epsilon"].as_f64().unwrap(), distance: miner_distance }
                    .mine(&x, &labels, None)
                    .unwrap();
                let pairs = |f: &str, s: &str| -> Vec<(usize, usize)> {
                    let (u, v) = (indices(&mined[f]), indices(&mined[s]));
                    u.into_iter().zip(v).collect()
                };
                assert_eq!(sorted(&m.pairs.similar), sorted(&pairs("a1", "p")), "{name}: positive pairs");
                assert_eq!(sorted(&m.pairs.dissimilar), sorted(&pairs("a2", "n")), "{name}: negative pairs");
                assert_eq!((m.stats.num_pos_pairs, m.stats.num_neg_pairs), (m.pairs.similar.len(), m.pairs.dissimilar.len()));
                ContrastiveLossConfig::new()
                    .with_pos_margin(lkw["pos_margin"].as_f64().unwrap())
                    .with_neg_margin(lkw["neg_margin"].as_f64().unwrap())
                    .with_distance(loss_distance)
                    .init()
                    .unwrap()
                    .forward(Batch::labelled(x.clone(), &labels), Tuples::Pairs(&m.pairs))
                    .unwrap()
            }
            other => panic!("unknown miner {other}"),
        };
        let grad = grad_rows(&x, &out.loss);
        assert_close(out.stats.loss, case["loss_value"].as_f64().unwrap(), 1e-9, 1e-12, &format!("{name} loss"));
        assert_rows_close(&grad, &rows(&case["grad"]), 1e-9, 1e-12, &format!("{name} grad"));
        assert_eq!(out.stats.num_tuples, case["num_loss_terms"].as_u64().unwrap() as usize, "{name} terms");
        assert_eq!(out.stats.num_active, case["num_nonzero_terms"].as_u64().unwrap() as usize, "{name} nonzero");
        checked.push(name.to_string());
    }
    assert_eq!(checked.len(), 6, "all six miner cases were checked: {checked:?}");
}
