//! Peak memory of a training run on a large photo folder: the lazy feed keeps the file
//! index, the batches in flight and a bounded cache, so the peak must not grow with the
//! number of images (issue 12: under 2 GB for 20,000 JPEGs at 224²). Two steps, so that
//! `/usr/bin/time -v` measures the training alone:
//!
//! ```sh
//! cargo build --release -j2 -p margin-train --example lazy_rss
//! target/release/examples/lazy_rss gen /tmp/photos-20k 20000      # seeded 256×256 JPEGs
//! /usr/bin/time -v target/release/examples/lazy_rss train /tmp/photos-20k 200
//! ```
//!
//! `gen DIR N`: `N` pictures in `N / 50` class folders (a coloured disc on a gradient, its
//! place, size and light drawn from a ChaCha8 stream seeded by the picture's number, plus
//! pixel noise), JPEG quality 90. `train DIR STEPS`: `margin train`'s job
//! ([`margin_train::run_job`]) on DIR — RGB, shorter side 224 then centre crop, ImageNet
//! normalisation, photo augmentation, ConvNet-4 (width 16) at 224², batches of 8 classes ×
//! 4, STEPS steps, no evaluation — then prints the job's training figures as JSON.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: lazy_rss gen DIR N | lazy_rss train DIR STEPS";
    let (cmd, dir, n) = match args.as_slice() {
        [_, c, d, n] => (c.as_str(), Path::new(d), n.parse::<usize>().expect(usage)),
        _ => panic!("{usage}"),
    };
    match cmd {
        "gen" => generate(dir, n),
        "train" => train(dir, n),
        _ => panic!("{usage}"),
    }
}

fn generate(dir: &Path, n: usize) {
    let classes = (n / 50).max(2);
    for i in 0..n {
        let c = i % classes;
        let d = dir.join(format!("class{c:04}"));
        if i < classes {
            std::fs::create_dir_all(&d).expect("create the class folder");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
        let hue = [(c * 67 % 200 + 40) as f32, (c * 131 % 200 + 40) as f32, (c * 29 % 200 + 40) as f32];
        let (cx, cy, r) = (rng.random_range(70.0..186.0f32), rng.random_range(70.0..186.0f32), rng.random_range(30.0..60.0f32));
        let light = rng.random_range(0.7..1.1f32);
        let img = image::RgbImage::from_fn(256, 256, |x, y| {
            let t = if c % 2 == 0 { x as f32 / 256.0 } else { y as f32 / 256.0 };
            let inside = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < r * r;
            let noise = ((x * 7 + y * 13 + i as u32 * 31) % 17) as f32;
            let px = |k: usize| ((if inside { hue[k] } else { (60.0 + 120.0 * t) * (0.6 + 0.2 * k as f32) }) * light + noise).min(255.0) as u8;
            image::Rgb([px(0), px(1), px(2)])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&img).expect("encode");
        std::fs::write(d.join(format!("img{i:06}.jpg")), bytes).expect("write the picture");
    }
    println!("{{\"generated\": {n}, \"classes\": {classes}, \"dir\": \"{}\"}}", dir.display());
}

fn train(dir: &Path, steps: usize) {
    margin::alloc::tune();
    let text = format!(
        r#"
[data]
kind = "image_folder"
path = "{}"

[data.preprocess]
channels = "rgb"
size = 224
resize = {{ kind = "shorter_side" }}
normalize = {{ kind = "imagenet" }}

[train]
seed = 0
epochs = 1
lr = 1e-3
validate_every = 0

[train.augment]
max_shift = 0.0
max_rotation_deg = 0.0

[train.augment.photo]
crop_scale = [0.5, 1.0]
brightness = 0.2
contrast = 0.2
saturation = 0.2

[train.model]
kind = "convnet4"
width = 16
embedding_dim = 64

[train.loss]
kind = "triplet"
margin = 0.2

[train.miner]
kind = "batch-hard"

[train.sampler]
classes_per_batch = 8
samples_per_class = 4
batches_per_epoch = {steps}

[eval]
untrained_baseline = false
"#,
        dir.display()
    );
    let cfg = margin_train::parse_config(&text, "lazy_rss").expect("the benchmark's configuration");
    let out = std::env::temp_dir().join(format!("margin-lazy-rss-{}", std::process::id()));
    let opts = margin_train::JobOptions { out: out.clone(), resume: false, epochs: None, evaluate: false };
    struct Quiet;
    impl margin_train::Observer for Quiet {}
    impl margin_train::JobObserver for Quiet {
        fn info(&mut self, line: &str) {
            eprintln!("{line}");
        }
    }
    let job = margin_train::run_job(&cfg, &opts, &margin::burn::tensor::Device::flex().autodiff(), &mut Quiet).expect("the run");
    println!("{}", serde_json::to_string(&job.metrics["train"]).expect("json"));
    let _ = std::fs::remove_dir_all(out);
}
