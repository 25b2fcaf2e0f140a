//! The seed's third program: a linear 2×2 embedding `W` trained by SGD with the
//! triplet loss (squared Euclidean, margin 0.5) on two Gaussian blobs, starting
//! from a `W` that maps both blobs onto each other.
//!
//! Run with `cargo run --release --example seed_toy`. Unlike the seed's C++,
//! the gradient comes from Burn's autodiff instead of hand-derived formulas.

use burn::tensor::{Device, Int, Tensor, TensorData};
use margin::{Batch, Distance, LpDistance, Power, Reducer, TripletMarginLossConfig, Tuples};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard normal sample (Box–Muller), so the example needs no extra crate.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Trains for `epochs` epochs of 200 random triplets; returns the mean loss per epoch.
pub fn train(epochs: usize, seed: u64) -> Vec<f64> {
    let device = Device::flex().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Class 0 around (0, 0), class 1 around (3, 3), σ = 0.2; 20 points each.
    let mut points = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..20 {
        for (class, centre) in [(0i64, 0.0), (1, 3.0)] {
            points.push([centre + 0.2 * normal(&mut rng), centre + 0.2 * normal(&mut rng)]);
            labels.push(class);
        }
    }
    let data = Tensor::<2>::from_data(
        TensorData::new(points.iter().flatten().copied().collect::<Vec<f64>>(), [points.len(), 2]),
        &device,
    );
    let loss_fn = TripletMarginLossConfig::new()
        .with_margin(0.5)
        .with_distance(Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false }))
        .with_reducer(Reducer::Mean)
        .init()
        .expect("valid config");
    // The seed starts from the identity, which already separates the blobs by far more
    // than the margin (its loss is 0 from the first epoch). Start instead from a W that
    // projects both blobs onto the same spot, so there is something to learn.
    let mut w = Tensor::<2>::from_data([[0.5, -0.5], [-0.5, 0.5]], &device);
    let (lr, per_epoch) = (0.05, 200);
    let mut history = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        // Sample triplets: anchor, a positive of the same class (≠ anchor), a negative.
        let (mut a, mut p, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..per_epoch {
            let ia = rng.random_range(0..points.len());
            let mut ip = ia;
            while ip == ia || labels[ip] != labels[ia] {
                ip = rng.random_range(0..points.len());
            }
            let mut i_n = ia;
            while labels[i_n] == labels[ia] {
                i_n = rng.random_range(0..points.len());
            }
            a.push(ia as i64);
            p.push(ip as i64);
            n.push(i_n as i64);
        }
        let rows = |idx: Vec<i64>| {
            let len = idx.len();
            data.clone().select(0, Tensor::<1, Int>::from_data(TensorData::new(idx, [len]), &device))
        };
        let wt = w.clone().require_grad();
        let embed = |x: Tensor<2>| x.matmul(wt.clone().transpose());
        let out = loss_fn
            .forward(Batch::triplets(embed(rows(a)), embed(rows(p)), embed(rows(n))), Tuples::All)
            .expect("finite inputs");
        let grad = wt.grad(&out.loss.backward()).expect("W is tracked");
        w = (w - grad.mul_scalar(lr)).detach();
        println!("Epoch {epoch}: avg loss per triplet = {:.6} (active {:.0}%)", out.stats.loss, 100.0 * out.stats.active_fraction);
        history.push(out.stats.loss);
    }
    println!("Learned W: {:?}", margin::to_host(&w));
    history
}

fn main() {
    train(50, 42);
}
