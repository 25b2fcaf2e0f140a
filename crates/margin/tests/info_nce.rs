//! InfoNCE / NT-Xent: agreement with pytorch-metric-learning's `NTXentLoss` (loss and
//! gradient, float64), with the naive loop of `margin::reference`, and with central
//! differences; label-free pair batches equal the labelled batch they stand for; bad
//! inputs refused.
//!
//! Golden values: `tests/data/info_nce_golden.json`, written by
//! `/work/.cache/peers-venv/bin/python crates/margin/tests/data/make_info_nce_golden.py`
//! (PML 2.9 and torch from the peers venv, `../shared/peers/setup.sh`; seeded, float64).

mod common;

use common::*;
use margin::{Batch, InfoNceLoss, Tuples};
use serde_json::Value;

fn golden() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/info_nce_golden.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["cases"].as_array().unwrap().clone()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

fn loss_and_grad(emb: &[Vec<f64>], labels: &[i64], t: f64, pairs: bool) -> (f64, Vec<Vec<f64>>) {
    let loss = InfoNceLoss::new(t).unwrap();
    let x = tensor64(emb);
    let out = if pairs {
        let n = emb.len() / 2;
        let (a, p) = (x.clone().slice([0..n]), x.clone().slice([n..2 * n]));
        loss.forward(Batch::in_batch_pairs(a, p), Tuples::All).unwrap()
    } else {
        loss.forward(Batch::labelled(x.clone(), labels), Tuples::All).unwrap()
    };
    (out.stats.loss, grad_rows(&x, &out.loss))
}

#[test]
fn agrees_with_pml_ntxent_and_the_naive_loop() {
    for case in golden() {
        let name = case["name"].as_str().unwrap();
        let emb = rows(&case["embeddings"]);
        let labels: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let t = case["temperature"].as_f64().unwrap();
        let (l, g) = loss_and_grad(&emb, &labels, t, case["pairs"].as_bool().unwrap());
        assert_close(l, case["loss"].as_f64().unwrap(), 1e-10, 1e-12, name);
        assert_rows_close(&g, &rows(&case["grad"]), 1e-8, 1e-10, name);
        assert_close(l, margin::reference::info_nce_loss(&emb, &labels, t), 1e-10, 1e-12, name);
    }
}

#[test]
fn gradient_matches_central_differences() {
    let emb = random_rows(5, 9, 4);
    let labels = random_labels(6, 9, 3);
    for t in [0.05, 0.5] {
        let (_, g) = loss_and_grad(&emb, &labels, t, false);
        let num = numeric_grad(&emb, 1e-6, |r| margin::reference::info_nce_loss(r, &labels, t));
        assert_rows_close(&g, &num, 1e-5, 1e-7, &format!("t = {t}"));
    }
}

#[test]
fn tiny_temperatures_stay_finite_and_edge_batches_are_zero() {
    // τ = 1e-4: exponents up to 2·10⁴ — the shifted form keeps everything finite.
    let emb = random_rows(8, 6, 3);
    let (l, g) = loss_and_grad(&emb, &[0, 1, 2, 0, 1, 2], 1e-4, false);
    assert!(l.is_finite() && g.iter().flatten().all(|v| v.is_finite()), "{l}");
    // No positive pair: an attached zero with exact zero gradients.
    let (l, g) = loss_and_grad(&emb[..3], &[0, 1, 2], 0.1, false);
    assert_eq!(l, 0.0);
    assert!(g.iter().flatten().all(|v| *v == 0.0));
    // One class only: no negatives, every term 0.
    let (l, _) = loss_and_grad(&emb[..3], &[4, 4, 4], 0.1, false);
    assert!(l.abs() < 1e-12, "{l}");
}

#[test]
fn bad_inputs_are_refused() {
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = InfoNceLoss::new(t).unwrap_err().to_string();
        assert!(e.contains("temperature"), "{e}");
    }
    let loss = InfoNceLoss::new(0.1).unwrap();
    let a = tensor64(&random_rows(1, 4, 3));
    let p = tensor64(&random_rows(2, 3, 3));
    let e = loss.forward(Batch::in_batch_pairs(a.clone(), p), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("positive") && e.contains("anchor"), "{e}");
    let mut nan = random_rows(3, 4, 3);
    nan[2][1] = f64::NAN;
    let e = loss.forward(Batch::in_batch_pairs(a.clone(), tensor64(&nan)), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
    let pairs = margin::Pairs::default();
    let e = loss.forward(Batch::labelled(a, &[0, 0, 1, 1]), Tuples::Pairs(&pairs)).unwrap_err().to_string();
    assert!(e.contains("Tuples::All"), "{e}");
}
