//! The lazy loader's throughput on a JPEG folder, beside `../shared/peers/loader_anchor.py`
//! (torchvision `ImageFolder` + `DataLoader(num_workers=2)`; run both in the same session,
//! compare ratios, state the load). margin: decode (zune-jpeg) → RGB → shorter side 224
//! (Pillow-style antialiased bilinear) → centre crop 224 → ImageNet normalisation, 2 worker
//! threads, batches of 32, a shuffled plan, two passes. (torchvision's run does
//! RandomResizedCrop + flip + ColorJitter instead of the fixed resize + crop; margin's photo
//! augmentation runs in the trainer on the prepared sample, not here.)
//! usage: cargo run --release -p margin-data --example bench_loader -- DIR [WORKERS]

use std::sync::Arc;
use std::time::Instant;

use margin_data::Samples;
use margin_data::image_folder::Prep;
use margin_data::lazy::{LazyImages, Prefetch};
use margin_data::preprocess::{ImagePreprocess, Resize};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: bench_loader DIR [WORKERS]"));
    let workers: usize = args.get(2).map_or(2, |w| w.parse().expect("WORKERS is a number"));
    let spec = ImagePreprocess { resize: Resize::ShorterSide { side: Some(224) }, ..ImagePreprocess::imagenet_eval() };
    let src = Arc::new(LazyImages::folder(&dir, Prep::Spec(spec)).expect("a folder of class folders"));
    let n = src.len();
    let mut rates = Vec::new();
    for pass in 0..2u64 {
        // A fixed shuffle per pass (multiplicative permutation), batches of 32.
        let step = (0..n).map(|k| 7919 + k).find(|s| gcd(*s, n) == 1).unwrap();
        let order: Vec<usize> = (0..n).map(|i| (i * step + pass as usize * 13) % n).collect();
        let plan: Vec<Vec<usize>> = order.chunks(32).map(<[usize]>::to_vec).collect();
        let t = Instant::now();
        let mut k = 0;
        for b in Prefetch::start(Arc::clone(&src), plan, workers, 2, false) {
            k += b.expect("decoding").samples.len();
        }
        rates.push(k as f64 / t.elapsed().as_secs_f64());
    }
    println!("{{\"loader\": \"margin lazy + Prefetch(workers={workers})\", \"images\": {n}, \"img_per_s\": [{:.1}, {:.1}]}}", rates[0], rates[1]);
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
