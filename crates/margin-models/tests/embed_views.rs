//! `embed_views` (test-time augmentation): one view is `embed` exactly; shifted views are the
//! mean of `embed` over the shifted copies of the data (normalised views, renormalised; raw
//! views averaged), batch by batch as in one pass.

use std::sync::{Mutex, MutexGuard};

use margin::burn::tensor::Device;
use margin_data::tta::{TestTimeAugment, shift_image};
use margin_data::{Dataset, ModelConfig};
use margin_models::{BuildEncoder, EmbeddingNet, embed, embed_views};

const SHAPE: [usize; 3] = [1, 16, 16];
const PIXELS: usize = 16 * 16;

/// A small ConvNet-4 with seeded weights, and the lock that the test holds while it runs. The
/// seed is the device's, shared by the tests of this binary, and Burn draws parameters lazily (at
/// their first use), so the whole test holds the lock: without it the weights, and whether a
/// random network's output moved under a one-pixel shift, varied from run to run.
fn net() -> (EmbeddingNet, MutexGuard<'static, ()>) {
    static DEVICE_RNG: Mutex<()> = Mutex::new(());
    let guard = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(7);
    let cfg = ModelConfig::Convnet4 { width: 4, embedding_dim: 3, normalize: false };
    (cfg.init(&SHAPE, &device).expect("a small ConvNet-4"), guard)
}

/// Five 16 × 16 images of distinct, position-dependent values.
fn images() -> Dataset {
    let n = 5;
    let v = (0..n * PIXELS).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    Dataset::new("images", v, SHAPE.to_vec(), vec![0, 1, 2, 3, 4]).unwrap()
}

fn shifted(ds: &Dataset, dx: isize, dy: isize) -> Dataset {
    let mut out = ds.features.clone();
    for (src, dst) in ds.features.chunks(PIXELS).zip(out.chunks_mut(PIXELS)) {
        shift_image(src, 1, 16, 16, dx, dy, dst);
    }
    Dataset::new("shifted", out, SHAPE.to_vec(), ds.labels.clone()).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "value {i}: {x} vs {y}");
    }
}

#[test]
fn one_view_is_embed() {
    let ((m, _rng), ds, dev) = (net(), images(), Device::flex());
    for normalize in [false, true] {
        assert_eq!(embed_views(&m, &ds, 2, normalize, TestTimeAugment::None, &dev), embed(&m, &ds, 2, normalize, &dev));
    }
}

#[test]
fn shifted_views_are_the_mean_of_the_shifted_embeddings() {
    let ((m, _rng), ds, dev) = (net(), images(), Device::flex());
    let tta = TestTimeAugment::Shifts { pixels: 1 };
    let views: Vec<Vec<f32>> = tta.offsets().iter().map(|&(dx, dy)| embed(&m, &shifted(&ds, dx, dy), 5, false, &dev)).collect();
    // Raw: the plain mean.
    let mean: Vec<f32> = (0..15).map(|i| views.iter().map(|v| v[i]).sum::<f32>() / 5.0).collect();
    close(&embed_views(&m, &ds, 2, false, tta, &dev), &mean);
    // Normalised: each view normalised, summed, renormalised.
    let mut sum = vec![0.0f32; 15];
    for v in &views {
        let mut v = v.clone();
        margin_models::l2_normalize_rows(&mut v, 3);
        sum.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
    }
    margin_models::l2_normalize_rows(&mut sum, 3);
    close(&embed_views(&m, &ds, 2, true, tta, &dev), &sum);
    // Averaging changed something: the test would not pass for a single view.
    let single = embed(&m, &ds, 2, false, &dev);
    let gap = single.iter().zip(&mean).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(gap > 1e-3, "the shifted views changed the raw embedding by only {gap}");
}
