//! Agreement with pytorch-metric-learning 2.9 on `../shared/golden/pml_golden.json`
//! (float64 values produced by PML; see that folder's README for each case's semantics).
//! Miner cases are covered by the mining tests; here: every case without a miner.

mod common;

use common::*;
use margin::{
    Batch, ContrastiveLossConfig, CosineSimilarity, Distance, LpDistance, Power, TripletMarginLossConfig, Tuples,
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

fn distance_of(d: &Value) -> Distance {
    let kw = &d["kwargs"];
    match d["class"].as_str().unwrap() {
        "LpDistance" => {
            assert_eq!(kw["p"].as_i64(), Some(2));
            Distance::Lp(LpDistance {
                power: if kw["power"].as_i64() == Some(2) { Power::SquaredEuclidean } else { Power::Euclidean },
                normalize: kw["normalize_embeddings"].as_bool().unwrap(),
            })
        }
        "CosineSimilarity" => Distance::Cosine(CosineSimilarity),
        other => panic!("unknown distance {other}"),
    }
}

/// Runs one non-miner golden case through the library; returns (loss, grad, terms, nonzero).
pub fn run_case(case: &Value) -> (f64, Vec<Vec<f64>>, usize, usize) {
    let emb = rows(&case["embeddings"]);
    let labels: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let x = tensor64(&emb);
    let distance = distance_of(&case["distance"]);
    let kw = &case["loss"]["kwargs"];
    let out = match case["loss"]["class"].as_str().unwrap() {
        "TripletMarginLoss" => TripletMarginLossConfig::new()
            .with_margin(kw["margin"].as_f64().unwrap())
            .with_smooth(kw.get("smooth_loss").and_then(Value::as_bool).unwrap_or(false))
            .with_swap(kw.get("swap").and_then(Value::as_bool).unwrap_or(false))
            .with_distance(distance)
            .init()
            .unwrap()
            .forward(Batch::labelled(x.clone(), &labels), Tuples::All)
            .unwrap(),
        "ContrastiveLoss" => ContrastiveLossConfig::new()
            .with_pos_margin(kw["pos_margin"].as_f64().unwrap())
            .with_neg_margin(kw["neg_margin"].as_f64().unwrap())
            .with_distance(distance)
            .init()
            .unwrap()
            .forward(Batch::labelled(x.clone(), &labels), Tuples::All)
            .unwrap(),
        other => panic!("unknown loss {other}"),
    };
    let grad = grad_rows(&x, &out.loss);
    (out.stats.loss, grad, out.stats.num_tuples, out.stats.num_active)
}

#[test]
fn every_non_miner_pml_case_agrees_in_value_gradient_and_counts() {
    let g = golden();
    let mut checked = 0;
    for case in g["cases"].as_array().unwrap() {
        if !case["miner"].is_null() {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let (loss, grad, terms, nonzero) = run_case(case);
        assert_close(loss, case["loss_value"].as_f64().unwrap(), 1e-9, 1e-12, &format!("{name} loss"));
        assert_rows_close(&grad, &rows(&case["grad"]), 1e-8, 1e-12, &format!("{name} grad"));
        assert_eq!(terms, case["num_loss_terms"].as_u64().unwrap() as usize, "{name} terms");
        let golden_nonzero = case["num_nonzero_terms"].as_u64().unwrap() as usize;
        if case["loss"]["kwargs"].get("smooth_loss").and_then(Value::as_bool) == Some(true) {
            // softplus terms are all > 0 (PML's AvgNonZero denominator); our `num_active`
            // counts margin violations (v > 0), which is what training needs to watch.
            assert_eq!(golden_nonzero, terms, "{name}: every softplus term is nonzero");
            assert!(nonzero < terms, "{name}: some triplets satisfy the margin");
        } else {
            assert_eq!(nonzero, golden_nonzero, "{name} nonzero");
        }
        checked += 1;
    }
    assert_eq!(checked, 9, "all nine non-miner cases of the golden file were checked");
}
