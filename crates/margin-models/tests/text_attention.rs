//! BERT's attention block in f64 on a tiny random configuration: its gradients (w.r.t. the
//! input and a weight matrix) against central differences of its own forward, and the
//! padding mask (padding positions never influence real ones).

use burn::module::Param;
use burn::nn::{LayerNormConfig, Linear};
use burn::tensor::{DType, Device, Tensor, TensorData};
use margin_models::text::{SelfAttention, mask_bias};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const H: usize = 8;
const HEADS: usize = 2;
const B: usize = 2;
const L: usize = 3;

fn t64<const D: usize>(v: &[f64], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), (device, DType::F64))
}

/// Parameters, in order: W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O, γ, β.
fn random_params(seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = |n: usize, lo: f64, hi: f64| (0..n).map(|_| rng.random_range(lo..hi)).collect::<Vec<f64>>();
    let mut p = Vec::new();
    for _ in 0..4 {
        p.push(v(H * H, -0.6, 0.6));
        p.push(v(H, -0.2, 0.2));
    }
    p.push(v(H, 0.5, 1.5));
    p.push(v(H, -0.3, 0.3));
    p
}

fn block(p: &[Vec<f64>], device: &Device) -> SelfAttention {
    let lin = |w: &Vec<f64>, b: &Vec<f64>| Linear {
        weight: Param::from_tensor(t64(w, [H, H], device)),
        bias: Some(Param::from_tensor(t64(b, [H], device))),
    };
    let mut norm = LayerNormConfig::new(H).with_epsilon(1e-12).init(device);
    norm.gamma = Param::from_tensor(t64(&p[8], [H], device));
    norm.beta = Some(Param::from_tensor(t64(&p[9], [H], device)));
    SelfAttention { query: lin(&p[0], &p[1]), key: lin(&p[2], &p[3]), value: lin(&p[4], &p[5]), output: lin(&p[6], &p[7]), layer_norm: norm, heads: HEADS }
}

/// Sequence 0 has 3 real tokens, sequence 1 has 2 (position 2 is padding).
const MASK: [f64; B * L] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];

/// `Σ w ⊙ attention(x)` over real positions (a random projection, so that LayerNorm's
/// constant row sum does not hide the gradient).
fn objective(att: &SelfAttention, x: Tensor<2>, w: &[f64], device: &Device) -> Tensor<1> {
    let y = att.forward(x, mask_bias(t64(&MASK, [B, L], device)));
    let mut wm = w.to_vec();
    for (r, m) in MASK.iter().enumerate() {
        for c in 0..H {
            wm[r * H + c] *= m;
        }
    }
    (y * t64(&wm, [B * L, H], device)).sum()
}

fn value(att: &SelfAttention, x: &[f64], w: &[f64], device: &Device) -> f64 {
    objective(att, t64(x, [B * L, H], device), w, device).into_scalar::<f64>()
}

#[test]
fn attention_block_gradients_match_central_differences_in_f64() {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x: Vec<f64> = (0..B * L * H).map(|_| rng.random_range(-1.0..1.0)).collect();
    let w: Vec<f64> = (0..B * L * H).map(|_| rng.random_range(-1.0..1.0)).collect();
    let params = random_params(3);
    let att = block(&params, &device);
    let xt = t64(&x, [B * L, H], &device).require_grad();
    let grads = objective(&att, xt.clone(), &w, &device).backward();
    let gx: Vec<f64> = xt.grad(&grads).expect("x is tracked").into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
    let gq: Vec<f64> = att.query.weight.val().grad(&grads).expect("W_Q is tracked").into_data().convert::<f64>().try_into_vec::<f64>().unwrap();

    let eps = 1e-6;
    let mut worst = 0f64;
    let mut check = |analytic: f64, plus: f64, minus: f64, what: String| {
        let numeric = (plus - minus) / (2.0 * eps);
        let err = (analytic - numeric).abs() / (1.0 + numeric.abs());
        worst = worst.max(err);
        assert!(err < 1e-7, "{what}: analytic {analytic}, central difference {numeric}");
    };
    for i in 0..x.len() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += eps;
        xm[i] -= eps;
        check(gx[i], value(&att, &xp, &w, &device), value(&att, &xm, &w, &device), format!("d/dx[{i}]"));
    }
    // W_Q in Burn's [in, out] layout, every entry.
    for i in 0..H * H {
        let (mut pp, mut pm) = (params.clone(), params.clone());
        pp[0][i] += eps;
        pm[0][i] -= eps;
        check(gq[i], value(&block(&pp, &device), &x, &w, &device), value(&block(&pm, &device), &x, &w, &device), format!("d/dW_Q[{i}]"));
    }
    eprintln!("attention block: worst relative gradient error {worst:.2e}");
    // The padding position is masked: its input has no influence on the objective.
    assert!(gx[5 * H..6 * H].iter().all(|g| *g == 0.0), "padding input gets gradient {:?}", &gx[5 * H..]);
}

#[test]
fn padding_positions_never_change_real_outputs() {
    let device = Device::flex();
    let att = block(&random_params(11), &device);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f64> = (0..B * L * H).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut x2 = x.clone();
    for v in &mut x2[5 * H..] {
        *v = 1e3;
    }
    let run = |x: &[f64]| -> Vec<f64> {
        att.forward(t64(x, [B * L, H], &device), mask_bias(t64(&MASK, [B, L], &device))).into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
    };
    let (a, b) = (run(&x), run(&x2));
    assert_eq!(&a[..5 * H], &b[..5 * H], "a padding key changed a real token's output");
    assert!(a.iter().chain(&b).all(|v| v.is_finite()));
}
