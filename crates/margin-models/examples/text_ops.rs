//! Time per operation of one BERT layer's forward on flex, at a CLINC150-like batch
//! (64 sentences × 12 tokens, all-MiniLM-L6-v2 sizes): where the encoder's time goes.
//!
//! `cargo run --release -p margin-models --example text_ops`

use std::time::Instant;

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Distribution, Tensor};

fn time<T>(name: &str, reps: usize, mut f: impl FnMut() -> T) -> f64 {
    let _ = f();
    let t = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{name:<36} {ms:8.3} ms");
    ms
}

fn main() {
    margin::alloc::tune();
    let d = Device::flex();
    let (b, l, h, heads, i) = (64usize, 12usize, 384usize, 12usize, 1536usize);
    let n = b * l;
    let x = Tensor::<2>::random([n, h], Distribution::Normal(0.0, 1.0), &d);
    let w = Tensor::<2>::random([h, h], Distribution::Normal(0.0, 0.05), &d);
    let w1 = Tensor::<2>::random([h, i], Distribution::Normal(0.0, 0.05), &d);
    let w2 = Tensor::<2>::random([i, h], Distribution::Normal(0.0, 0.05), &d);
    let bias = Tensor::<1>::random([h], Distribution::Normal(0.0, 0.05), &d);
    let mid = Tensor::<2>::random([n, i], Distribution::Normal(0.0, 1.0), &d);
    let ln = burn::nn::LayerNormConfig::new(h).init(&d);
    let reps = 20;
    let mut total = 0.0;
    total += 4.0 * time("matmul [768,384]x[384,384]", reps, || x.clone().matmul(w.clone()));
    total += 4.0 * time("+ bias [768,384]", reps, || x.clone() + bias.clone().unsqueeze());
    total += time("matmul [768,384]x[384,1536]", reps, || x.clone().matmul(w1.clone()));
    total += time("matmul [768,1536]x[1536,384]", reps, || mid.clone().matmul(w2.clone()));
    time("gelu, Burn's composition [768,1536]", reps, || gelu(mid.clone()));
    total += time("gelu, kernels::gelu [768,1536]", reps, || margin_models::kernels::gelu(mid.clone()));
    total += 2.0 * time("layer_norm [768,384]", reps, || ln.forward(x.clone()));
    let split = |t: Tensor<2>| t.reshape([b, l, heads, h / heads]).swap_dims(1, 2);
    let q = split(x.clone());
    total += 3.0 * time("split heads (reshape+swap)", reps, || split(x.clone()) + 0.0);
    let kt = q.clone().swap_dims(2, 3);
    total += time("scores q·kᵀ [64,12,12,32]", reps, || q.clone().matmul(kt.clone()));
    let s = q.clone().matmul(kt.clone());
    total += time("softmax [64,12,12,12]", reps, || softmax(s.clone(), 3));
    total += time("p·v", reps, || s.clone().matmul(q.clone()));
    total += time("merge heads (swap+reshape)", reps, || q.clone().swap_dims(1, 2).reshape([n, h]) + 0.0);
    println!("one layer ≈ {total:.2} ms; 6 layers ≈ {:.1} ms per 64 sentences → {:.0} sentences/s", 6.0 * total, 64.0 / (6.0 * total / 1e3));
}
