//! Hand-written 3×3 convolution (`margin_models::kernels::conv3x3`) vs burn-nn's `Conv2d::forward` on
//! Flex at ConvNet-4's four layer shapes (batch 128), same run, same inputs, alternating order.
//! Prints one JSON line per (shape, mode): median milliseconds of each path and the speedup.
//! The first layer's input (the images) is not tracked, as in training.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example conv_kernel [-- REPEATS [LAYER]]`

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Distribution, Tensor};
use margin_models::kernels::conv3x3;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    margin::alloc::tune();
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let only: Option<usize> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    let device = Device::flex().autodiff();
    for (i, (cin, hw)) in [(1usize, 28usize), (64, 14), (64, 7), (64, 3)]
        .into_iter()
        .enumerate()
    {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let shape = [128, cin, hw, hw];
        let conv: Conv2d = Conv2dConfig::new([cin, 64], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x0 = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let track_x = cin != 1;
        for mode in ["fwd", "fwd_bwd"] {
            let mut times = [Vec::new(), Vec::new()];
            for rep in 0..repeats + 2 {
                let order = if rep % 2 == 0 { [0, 1] } else { [1, 0] };
                for path in order {
                    let x = if track_x {
                        x0.clone().detach().require_grad()
                    } else {
                        x0.clone().detach()
                    };
                    let t = Instant::now();
                    let y = if path == 0 {
                        conv3x3(x.clone(), &conv)
                    } else {
                        conv.forward(x.clone())
                    };
                    if mode == "fwd_bwd" {
                        let g = y.sum().backward();
                        std::hint::black_box((conv.weight.grad(&g), track_x.then(|| x.grad(&g))));
                    } else {
                        std::hint::black_box(y.sum().into_scalar::<f32>());
                    }
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    if rep >= 2 {
                        times[path].push(ms);
                    }
                }
            }
            let [f, u] = times;
            let (fm, um) = (median(f), median(u));
            println!(
                "{{\"bench\":\"conv3x3\",\"shape\":{shape:?},\"mode\":\"{mode}\",\"repeats\":{repeats},\"threads\":\"{threads}\",\"fused_ms\":{fm:.2},\"burn_ms\":{um:.2},\"speedup\":{:.2}}}",
                um / fm
            );
        }
    }
}
