//! Per-operation timing of ConvNet-4's first block on `flex` (forward and backward),
//! to see where a training step's time goes. `cargo run --release --example convnet_ops`.

use std::time::Instant;

use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};

fn time(name: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    println!("{name:40} {:8.2} ms", 1e3 * t.elapsed().as_secs_f64() / reps as f64);
}

fn main() {
    margin::alloc::tune();
    let device = Device::flex().autodiff();
    let n = 128;
    for (cin, hw) in [(1usize, 28usize), (64, 14), (64, 7)] {
        println!("-- block with {cin} -> 64 channels at {hw}x{hw}, batch {n}");
        let conv = Conv2dConfig::new([cin, 64], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
        let bn = BatchNormConfig::new(64).init(&device);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = Tensor::<4>::random([n, cin, hw, hw], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let y = Tensor::<4>::random([n, 64, hw, hw], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let sync = |t: Tensor<1>| t.into_scalar::<f32>();
        time("conv fwd", 5, || { sync(conv.forward(x.clone()).sum()); });
        time("conv fwd+bwd", 5, || { let _ = conv.forward(x.clone()).sum().backward(); });
        time("bn fwd", 5, || { sync(bn.forward(y.clone()).sum()); });
        time("bn fwd+bwd", 5, || { let _ = bn.forward(y.clone()).sum().backward(); });
        time("pool fwd", 5, || { sync(pool.forward(y.clone()).sum()); });
        time("pool fwd+bwd", 5, || { let _ = pool.forward(y.clone()).sum().backward(); });
        let reshape_pool = |t: Tensor<4>| {
            let [n, c, h, w] = t.dims();
            let t: Tensor<6> = t.reshape([n, c, h / 2, 2, w / 2, 2]);
            let t: Tensor<4> = t.max_dim(5).squeeze_dim::<5>(5).max_dim(3).squeeze_dim::<4>(3);
            t
        };
        time("pool by reshape+max_dim fwd", 5, || { sync(reshape_pool(y.clone()).sum()); });
        time("pool by reshape+max_dim fwd+bwd", 5, || { let _ = reshape_pool(y.clone()).sum().backward(); });
        let manual_bn = |t: Tensor<4>| {
            let [n, c, h, w] = t.dims();
            let flat: Tensor<3> = t.clone().reshape([n, c, h * w]);
            let mean: Tensor<3> = flat.clone().mean_dim(2).mean_dim(0); // [1, c, 1]
            let centered = flat - mean;
            let var = centered.clone().square().mean_dim(2).mean_dim(0);
            let out = centered * (var.add_scalar(1e-5)).sqrt().recip();
            out.reshape([n, c, h, w])
        };
        time("bn by tensor ops fwd", 5, || { sync(manual_bn(y.clone()).sum()); });
        time("bn by tensor ops fwd+bwd", 5, || { let _ = manual_bn(y.clone()).sum().backward(); });
        time("relu fwd+bwd", 5, || { let _ = relu(y.clone()).sum().backward(); });
        time("sum fwd+bwd (baseline)", 5, || { let _ = y.clone().sum().backward(); });
    }
}
