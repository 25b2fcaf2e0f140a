//! Fused vs unfused BatchNorm (train) → ReLU → MaxPool 2×2 on Flex, same run, same inputs.
//! Prints one JSON line per (shape, mode, path): median / min milliseconds over the repeats.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example bn_pool_kernel [-- REPEATS]`

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use margin_models::kernels::{batch_norm_relu_max_pool_train, unfused_train};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(7);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let device = Device::flex().autodiff();
    for shape in [[128, 64, 28, 28], [128, 64, 14, 14], [128, 64, 7, 7]] {
        let c = shape[1];
        let x0 = Tensor::<4>::random(shape, Distribution::Normal(0.3, 1.2), &device);
        let gamma0 = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.3), &device);
        let beta0 = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.3), &device);
        for mode in ["fwd", "fwd_bwd"] {
            let mut times = [Vec::new(), Vec::new()];
            for rep in 0..repeats + 2 {
                // Alternate the order so drift on a noisy machine hits both paths alike.
                let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
                for path in order {
                    let x = x0.clone().detach().require_grad();
                    let gamma = gamma0.clone().detach().require_grad();
                    let beta = beta0.clone().detach().require_grad();
                    let t = Instant::now();
                    let r = if path == 0 {
                        batch_norm_relu_max_pool_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
                    } else {
                        unfused_train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
                    };
                    if mode == "fwd_bwd" {
                        let grads = r.output.sum().backward();
                        let gx = x.grad(&grads).unwrap();
                        let gg = gamma.grad(&grads).unwrap();
                        let gb = beta.grad(&grads).unwrap();
                        std::hint::black_box((gx, gg, gb));
                    } else {
                        std::hint::black_box(r.output);
                    }
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    if rep >= 2 {
                        times[path].push(ms);
                    }
                }
            }
            let [f, u] = times;
            let (fm, um) = (median(f.clone()), median(u.clone()));
            for (name, med, v) in [("fused", fm, &f), ("unfused", um, &u)] {
                let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
                println!(
                    "{{\"shape\":{shape:?},\"mode\":\"{mode}\",\"path\":\"{name}\",\"median_ms\":{med:.3},\"min_ms\":{min:.3},\"repeats\":{repeats},\"threads\":\"{threads}\"}}"
                );
            }
            println!("{{\"shape\":{shape:?},\"mode\":\"{mode}\",\"speedup\":{:.2}}}", um / fm);
        }
    }
}
