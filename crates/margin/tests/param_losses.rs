//! The losses with per-class parameters — ArcFace, CosFace, normalised softmax, Proxy-Anchor,
//! Proxy-NCA, SoftTriple: agreement with pytorch-metric-learning 2.9 (loss, gradient with
//! respect to the embeddings and to the parameters, float64), with the naive loops of
//! `param_losses/reference.rs`, and with central differences of those loops (embeddings and
//! parameters); seeded initialisers; bad inputs refused.
//!
//! Golden values: `tests/data/param_losses_golden.json`, written by
//! `/work/.cache/peers-venv/bin/python crates/margin/tests/data/make_param_losses_golden.py`
//! (PML 2.9 and torch from the peers venv, `../shared/peers/setup.sh`; seeded, float64).

mod common;
#[path = "param_losses/reference.rs"]
mod reference;

use burn::tensor::{DType, Tensor, TensorData};
use common::*;
use margin::{
    ArcFaceLossConfig, Batch, CosFaceLossConfig, LossOutput, MarginError, NormalizedSoftmaxLossConfig, ProxyAnchorLossConfig,
    ProxyNcaLossConfig, SoftTripleLossConfig, Tuples,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// A loss and its options, in margin's names.
#[derive(Debug, Clone, Copy)]
enum Kind {
    ArcFace { margin_degrees: f64, scale: f64 },
    CosFace { margin: f64, scale: f64 },
    NormalizedSoftmax { temperature: f64 },
    ProxyAnchor { margin: f64, alpha: f64 },
    ProxyNca { softmax_scale: f64 },
    SoftTriple { k: usize, la: f64, gamma: f64, margin: f64 },
}

impl Kind {
    /// PML's defaults.
    fn default_of(name: &str) -> Kind {
        match name {
            "arcface" => Kind::ArcFace { margin_degrees: 28.6, scale: 64.0 },
            "cosface" => Kind::CosFace { margin: 0.35, scale: 64.0 },
            "normalized_softmax" => Kind::NormalizedSoftmax { temperature: 0.05 },
            "proxy_anchor" => Kind::ProxyAnchor { margin: 0.1, alpha: 32.0 },
            "proxy_nca" => Kind::ProxyNca { softmax_scale: 1.0 },
            "soft_triple" => Kind::SoftTriple { k: 10, la: 20.0, gamma: 0.1, margin: 0.01 },
            _ => panic!("unknown kind {name}"),
        }
    }

    /// A golden case's kind: the defaults with its options applied.
    fn from_case(case: &Value) -> Kind {
        let o = |key: &str, default: f64| case["options"].get(key).map_or(default, |v| v.as_f64().unwrap());
        match Kind::default_of(case["kind"].as_str().unwrap()) {
            Kind::ArcFace { margin_degrees, scale } => Kind::ArcFace { margin_degrees: o("margin_degrees", margin_degrees), scale: o("scale", scale) },
            Kind::CosFace { margin, scale } => Kind::CosFace { margin: o("margin", margin), scale: o("scale", scale) },
            Kind::NormalizedSoftmax { temperature } => Kind::NormalizedSoftmax { temperature: o("temperature", temperature) },
            Kind::ProxyAnchor { margin, alpha } => Kind::ProxyAnchor { margin: o("margin", margin), alpha: o("alpha", alpha) },
            Kind::ProxyNca { softmax_scale } => Kind::ProxyNca { softmax_scale: o("softmax_scale", softmax_scale) },
            Kind::SoftTriple { k, la, gamma, margin } => Kind::SoftTriple {
                k: o("centers_per_class", k as f64) as usize,
                la: o("la", la),
                gamma: o("gamma", gamma),
                margin: o("margin", margin),
            },
        }
    }

    /// Parameter rows per class.
    fn rows_per_class(self) -> usize {
        if let Kind::SoftTriple { k, .. } = self { k } else { 1 }
    }

    /// The naive reference.
    fn reference(self, x: &[Vec<f64>], y: &[usize], w: &[Vec<f64>]) -> f64 {
        match self {
            Kind::ArcFace { margin_degrees, scale } => reference::arcface(x, y, w, margin_degrees, scale),
            Kind::CosFace { margin, scale } => reference::cosface(x, y, w, margin, scale),
            Kind::NormalizedSoftmax { temperature } => reference::normalized_softmax(x, y, w, temperature),
            Kind::ProxyAnchor { margin, alpha } => reference::proxy_anchor(x, y, w, margin, alpha),
            Kind::ProxyNca { softmax_scale } => reference::proxy_nca(x, y, w, softmax_scale),
            Kind::SoftTriple { k, la, gamma, margin } => reference::soft_triple(x, y, w, k, la, gamma, margin),
        }
    }

    /// The library's loss with parameters `w`, run forward on `x`: its output and the
    /// parameter tensor it read (for the gradient).
    fn forward(self, x: Tensor<2>, labels: &[i64], w: Tensor<2>, classes: usize) -> margin::Result<(LossOutput, Tensor<2>)> {
        let d = x.dims()[1];
        let batch = Batch::labelled(x, labels);
        Ok(match self {
            Kind::ArcFace { margin_degrees, scale } => {
                let l = ArcFaceLossConfig::new(classes, d).with_margin_degrees(margin_degrees).with_scale(scale).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.weights.val())
            }
            Kind::CosFace { margin, scale } => {
                let l = CosFaceLossConfig::new(classes, d).with_margin(margin).with_scale(scale).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.weights.val())
            }
            Kind::NormalizedSoftmax { temperature } => {
                let l = NormalizedSoftmaxLossConfig::new(classes, d).with_temperature(temperature).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.weights.val())
            }
            Kind::ProxyAnchor { margin, alpha } => {
                let l = ProxyAnchorLossConfig::new(classes, d).with_margin(margin).with_alpha(alpha).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.proxies.val())
            }
            Kind::ProxyNca { softmax_scale } => {
                let l = ProxyNcaLossConfig::new(classes, d).with_softmax_scale(softmax_scale).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.proxies.val())
            }
            Kind::SoftTriple { k, la, gamma, margin } => {
                let l = SoftTripleLossConfig::new(classes, d).with_centers_per_class(k).with_la(la).with_gamma(gamma).with_margin(margin).init_with(w)?;
                (l.forward(batch, Tuples::All)?, l.centers.val())
            }
        })
    }

    /// Loss value, `∂L/∂x` and `∂L/∂W` from the library (float64).
    fn loss_and_grads(self, x: &[Vec<f64>], labels: &[i64], w: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let xt = tensor64(x);
        let classes = w.len() / self.rows_per_class();
        let (out, wt) = self.forward(xt.clone(), labels, tensor64(w), classes).unwrap();
        let grads = out.loss.backward();
        let rows = |t: &Tensor<2>| {
            let g = t.grad(&grads).expect("tracked");
            let d = g.dims()[1];
            margin::to_host(&g).chunks(d).map(|c| c.to_vec()).collect::<Vec<_>>()
        };
        assert_eq!(margin::to_host(&out.loss)[0], out.stats.loss, "{self:?}: the attached value is the host value");
        (out.stats.loss, rows(&xt), rows(&wt))
    }
}

fn golden() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/param_losses_golden.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["cases"].as_array().unwrap().clone()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

fn as_classes(labels: &[i64]) -> Vec<usize> {
    labels.iter().map(|&l| l as usize).collect()
}

#[test]
fn agrees_with_pml_and_the_naive_loops() {
    let cases = golden();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = Kind::from_case(&case);
        let (x, w) = (rows(&case["embeddings"]), rows(&case["params"]));
        let labels: Vec<i64> = case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(w.len(), case["num_classes"].as_u64().unwrap() as usize * kind.rows_per_class(), "{name}");
        let (l, gx, gw) = kind.loss_and_grads(&x, &labels, &w);
        assert_close(l, case["loss"].as_f64().unwrap(), 1e-10, 1e-12, name);
        assert_rows_close(&gx, &rows(&case["grad"]), 1e-8, 1e-10, &format!("{name}: ∂/∂x"));
        assert_rows_close(&gw, &rows(&case["param_grad"]), 1e-8, 1e-10, &format!("{name}: ∂/∂W"));
        assert_close(l, kind.reference(&x, &as_classes(&labels), &w), 1e-10, 1e-12, &format!("{name}: reference"));
    }
}

/// Every loss at its defaults and at other options, on seeded rows.
fn kinds() -> Vec<Kind> {
    vec![
        Kind::ArcFace { margin_degrees: 28.6, scale: 64.0 },
        Kind::ArcFace { margin_degrees: 10.0, scale: 4.0 },
        Kind::CosFace { margin: 0.35, scale: 64.0 },
        Kind::CosFace { margin: 0.1, scale: 2.0 },
        Kind::NormalizedSoftmax { temperature: 0.05 },
        Kind::NormalizedSoftmax { temperature: 1.0 },
        Kind::ProxyAnchor { margin: 0.1, alpha: 32.0 },
        Kind::ProxyAnchor { margin: 0.0, alpha: 3.0 },
        Kind::ProxyNca { softmax_scale: 1.0 },
        Kind::ProxyNca { softmax_scale: 10.0 },
        Kind::SoftTriple { k: 10, la: 20.0, gamma: 0.1, margin: 0.01 },
        Kind::SoftTriple { k: 3, la: 5.0, gamma: 0.5, margin: 0.2 },
    ]
}

#[test]
fn gradients_match_central_differences_for_embeddings_and_parameters() {
    let (b, d, classes) = (7, 5, 4);
    let x = random_rows(31, b, d);
    // Labels 0..C with class 3 absent: Proxy-Anchor's |C⁺| < C.
    let labels: Vec<i64> = vec![0, 1, 2, 0, 1, 2, 0];
    let y = as_classes(&labels);
    for (seed, kind) in kinds().into_iter().enumerate() {
        let w = random_rows(100 + seed as u64, classes * kind.rows_per_class(), d);
        let (l, gx, gw) = kind.loss_and_grads(&x, &labels, &w);
        assert_close(l, kind.reference(&x, &y, &w), 1e-10, 1e-12, &format!("{kind:?}: reference"));
        let nx = numeric_grad(&x, 1e-6, |r| kind.reference(r, &y, &w));
        let nw = numeric_grad(&w, 1e-6, |r| kind.reference(&x, &y, r));
        assert_rows_close(&gx, &nx, 1e-5, 1e-7, &format!("{kind:?}: ∂/∂x"));
        assert_rows_close(&gw, &nw, 1e-5, 1e-7, &format!("{kind:?}: ∂/∂W"));
        assert!(gw.iter().flatten().any(|v| v.abs() > 1e-6), "{kind:?}: the parameters get a gradient");
    }
}

#[test]
fn arcface_past_pi_minus_m_takes_the_linear_branch_with_its_gradient() {
    // Row 0 points away from its class weight: θ ≈ π, past π − m.
    let w = random_rows(7, 3, 4);
    let mut x = random_rows(8, 4, 4);
    x[0] = w[0].iter().map(|v| -v + 1e-3).collect();
    let labels = [0, 1, 2, 0];
    let kind = Kind::ArcFace { margin_degrees: 50.0, scale: 8.0 };
    let (_, gx, gw) = kind.loss_and_grads(&x, &labels, &w);
    let y = as_classes(&labels);
    assert_rows_close(&gx, &numeric_grad(&x, 1e-6, |r| kind.reference(r, &y, &w)), 1e-5, 1e-7, "∂/∂x");
    assert_rows_close(&gw, &numeric_grad(&w, 1e-6, |r| kind.reference(&x, &y, r)), 1e-5, 1e-7, "∂/∂W");
    // At θ = π − m the target logit jumps from cos π = −1 down to cos(π − m) − m sin m
    // (PML's and the paper's code): still decreasing in θ, i.e. increasing in the cosine.
    let m = 50f64.to_radians();
    let f = |c: f64| margin::TargetMargin::Angular(m).apply(c).0;
    let at = (std::f64::consts::PI - m).cos();
    assert_close(f(at + 1e-12), -1.0, 0.0, 1e-9, "cos branch");
    assert_close(f(at - 1e-12), -m.cos() - m * m.sin(), 0.0, 1e-9, "linear branch");
    assert!(f(at - 1e-3) < f(at - 1e-6) && f(at - 1e-6) < f(at + 1e-6) && f(at + 1e-6) < f(at + 1e-3));
}

#[test]
fn arcface_at_a_cosine_of_one_stays_finite() {
    // A row equal to its class weight: θ = 0, where ∂f/∂c is unbounded; the floor keeps it finite.
    let w = random_rows(9, 3, 4);
    let x = vec![w[1].clone(), w[0].clone()];
    let (l, gx, gw) = Kind::ArcFace { margin_degrees: 28.6, scale: 64.0 }.loss_and_grads(&x, &[1, 0], &w);
    assert!(l.is_finite() && gx.iter().chain(&gw).flatten().all(|v| v.is_finite()), "{l}");
}

#[test]
fn statistics_count_the_violated_margins() {
    // Embeddings on their own class weights, others orthogonal: no constraint violated.
    let w: Vec<Vec<f64>> = (0..3).map(|c| (0..3).map(|j| f64::from(u8::from(c == j))).collect()).collect();
    let x = vec![w[0].clone(), w[1].clone(), w[2].clone(), w[0].clone()];
    let labels = [0, 1, 2, 0];
    for kind in kinds() {
        if matches!(kind, Kind::SoftTriple { .. }) {
            continue;
        }
        let (out, _) = kind.forward(tensor64(&x), &labels, tensor64(&w), 3).unwrap();
        // Proxy-Anchor's negatives are active until `cos < −δ`: orthogonal ones are, with δ > 0.
        let (tuples, active) = match kind {
            Kind::ProxyAnchor { margin, .. } => (12, if margin > 0.0 { 8 } else { 0 }),
            _ => (8, 0),
        };
        assert_eq!((out.stats.num_tuples, out.stats.num_active), (tuples, active), "{kind:?}");
        assert_eq!(out.stats.mean_ap_dist, Some(if matches!(kind, Kind::ProxyNca { .. }) { 0.0 } else { 1.0 }), "{kind:?}");
        // The rows swapped to the wrong class: every other-class constraint is violated.
        let (out, _) = kind.forward(tensor64(&x), &[1, 2, 0, 1], tensor64(&w), 3).unwrap();
        assert!(out.stats.active_fraction > 0.3, "{kind:?}: {:?}", out.stats);
    }
}

#[test]
fn initialisers_are_seeded_and_follow_pml() {
    let device = device();
    let draw = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let l = ProxyAnchorLossConfig::new(50, 40).init(&mut rng, &device).unwrap();
        margin::to_host(&l.proxies.val())
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    let std = |v: &[f64]| (v.iter().map(|a| a * a).sum::<f64>() / v.len() as f64).sqrt();
    // kaiming_normal_(fan_out): N(0, 2/C).
    assert_close(std(&draw(3)), (2.0f64 / 50.0).sqrt(), 0.05, 0.0, "proxy-anchor std");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let l = ArcFaceLossConfig::new(30, 40).init(&mut rng, &device).unwrap();
    assert_close(std(&margin::to_host(&l.weights.val())), 1.0, 0.05, 0.0, "arcface std");
    let l = SoftTripleLossConfig::new(5, 8).init(&mut rng, &device).unwrap();
    let c = margin::to_host(&l.centers.val());
    assert_eq!(l.centers.val().dims(), [50, 8]);
    let bound = 1.0 / 50f64.sqrt();
    assert!(c.iter().all(|v| v.abs() <= bound * (1.0 + 1e-6)) && c.iter().any(|v| v.abs() > 0.9 * bound));
    // An f32 loss takes f32 embeddings, and trains them and itself.
    let x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 16], [2, 8]), (&device, DType::F32)).require_grad();
    let out = l.forward(Batch::labelled(x.clone(), &[0, 4]), Tuples::All).unwrap();
    let grads = out.loss.backward();
    assert!(x.grad(&grads).is_some() && l.centers.val().grad(&grads).is_some());
}

#[test]
fn bad_inputs_are_refused() {
    let x = tensor64(&random_rows(1, 4, 3));
    let w = || tensor64(&random_rows(2, 3, 3));
    let proxy_nca = ProxyNcaLossConfig::new(3, 3).init_with(w()).unwrap();
    for labels in [[0, 1, 3, 0], [0, -1, 2, 0]] {
        let e = proxy_nca.forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap_err();
        assert!(matches!(e, MarginError::LabelOutOfRange { num_classes: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("labels["), "{e}");
    }
    let e = proxy_nca.forward(Batch::labelled(x.clone(), &[0, 1]), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("labels"), "{e}");
    let pairs = margin::Pairs::default();
    let e = proxy_nca.forward(Batch::labelled(x.clone(), &[0, 1, 2, 0]), Tuples::Pairs(&pairs)).unwrap_err().to_string();
    assert!(e.contains("Tuples::All"), "{e}");
    let e = proxy_nca.forward(Batch::triplets(x.clone(), x.clone(), x.clone()), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("Batch::labelled"), "{e}");
    let wide = tensor64(&random_rows(3, 4, 5));
    let e = proxy_nca.forward(Batch::labelled(wide, &[0, 1, 2, 0]), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("embeddings") && e.contains("proxies"), "{e}");
    let mut nan = random_rows(4, 4, 3);
    nan[1][2] = f64::NAN;
    let e = proxy_nca.forward(Batch::labelled(tensor64(&nan), &[0, 1, 2, 0]), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("non-finite"), "{e}");
    // Parameters: shape, finiteness, float type.
    let e = ProxyAnchorLossConfig::new(4, 3).init_with(w()).unwrap_err().to_string();
    assert!(e.contains("proxies") && e.contains("[3, 3]"), "{e}");
    let e = SoftTripleLossConfig::new(3, 3).init_with(w()).unwrap_err().to_string();
    assert!(e.contains("centers") && e.contains("[30, 3]"), "{e}");
    let e = CosFaceLossConfig::new(3, 3).init_with(tensor64(&nan[..3])).unwrap_err().to_string();
    assert!(e.contains("class weights") && e.contains("non-finite"), "{e}");
    let f32_x = Tensor::<2>::from_data(TensorData::new(vec![0.5f32; 12], [4, 3]), (&device(), DType::F32));
    let e = proxy_nca.forward(Batch::labelled(f32_x, &[0, 1, 2, 0]), Tuples::All).unwrap_err().to_string();
    assert!(e.contains("F32") && e.contains("F64"), "{e}");
}

#[test]
fn bad_configurations_are_refused() {
    let field = |e: MarginError| match e {
        MarginError::InvalidConfig { field, .. } => field,
        other => panic!("{other:?}"),
    };
    let w = || tensor64(&random_rows(2, 3, 3));
    for v in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(field(ArcFaceLossConfig::new(3, 3).with_scale(v).init_with(w()).unwrap_err()), "scale");
        assert_eq!(field(CosFaceLossConfig::new(3, 3).with_scale(v).init_with(w()).unwrap_err()), "scale");
        assert_eq!(field(NormalizedSoftmaxLossConfig::new(3, 3).with_temperature(v).init_with(w()).unwrap_err()), "temperature");
        assert_eq!(field(ProxyAnchorLossConfig::new(3, 3).with_alpha(v).init_with(w()).unwrap_err()), "alpha");
        assert_eq!(field(ProxyNcaLossConfig::new(3, 3).with_softmax_scale(v).init_with(w()).unwrap_err()), "softmax_scale");
        assert_eq!(field(SoftTripleLossConfig::new(3, 3).with_gamma(v).init_with(w()).unwrap_err()), "gamma");
        assert_eq!(field(SoftTripleLossConfig::new(3, 3).with_la(v).init_with(w()).unwrap_err()), "la");
    }
    for v in [-0.1, 180.0, 400.0, f64::NAN] {
        assert_eq!(field(ArcFaceLossConfig::new(3, 3).with_margin_degrees(v).init_with(w()).unwrap_err()), "margin_degrees");
    }
    for v in [-0.1, 2.5] {
        assert_eq!(field(CosFaceLossConfig::new(3, 3).with_margin(v).init_with(w()).unwrap_err()), "margin");
    }
    assert_eq!(field(ProxyAnchorLossConfig::new(3, 3).with_margin(-1.0).init_with(w()).unwrap_err()), "margin");
    assert_eq!(field(SoftTripleLossConfig::new(3, 3).with_centers_per_class(0).init_with(w()).unwrap_err()), "centers_per_class");
    assert_eq!(field(ProxyNcaLossConfig::new(0, 3).init_with(w()).unwrap_err()), "num_classes");
    assert_eq!(field(ProxyNcaLossConfig::new(3, 0).init_with(w()).unwrap_err()), "embedding_dim");
}
