//! The lazy feed trains the same run as the data held in memory: the same step losses and
//! the same final weights, bit for bit, with photo augmentation on, three decoding workers
//! and a cache too small to hold the set (so samples are evicted and decoded again). With
//! `skip_bad`, a bad training file is left out and reported by name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use margin_data::image_folder::{Prep, load_images};
use margin_data::lazy::LazyImages;
use margin_data::preprocess::ImagePreprocess;
use margin_train::feed::{Feed, LoaderOptions};
use margin_train::{MemorySink, Observer, StepRecord, Trainer};

/// The device's random generator is one per process and the trainer seeds it: one test at
/// a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A folder of `classes × per_class` RGB pictures (binary PPM: written without an image
/// encoder), 20×16, their pixels from a fixed LCG.
fn folder(name: &str, classes: usize, per_class: usize) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-lazy-feed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for c in 0..classes {
        std::fs::create_dir_all(d.join(format!("person{c}"))).unwrap();
        for k in 0..per_class {
            let mut bytes = b"P6\n20 16\n255\n".to_vec();
            for p in 0..20 * 16 * 3 {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let base = [60u8, 140, 220][(c + p % 3) % 3];
                bytes.push(base.wrapping_add((s >> 59) as u8 * 4));
            }
            std::fs::write(d.join(format!("person{c}/{k}.ppm")), bytes).unwrap();
        }
    }
    d
}

fn prep() -> Prep {
    let spec: ImagePreprocess = toml::from_str("channels = \"rgb\"\nsize = 16\nresize = { kind = \"shorter_side\" }\nnormalize = { kind = \"imagenet\" }").unwrap();
    Prep::Spec(spec)
}

const TRAIN: &str = r#"
[data]
kind = "features"
path = "unused.npy"

[train]
seed = 3
epochs = 2
lr = 1e-3
validate_every = 0

[train.augment]
max_shift = 1.0
max_rotation_deg = 5.0

[train.augment.photo]
crop_scale = [0.6, 1.0]
brightness = 0.2
contrast = 0.2
saturation = 0.2

[train.model]
kind = "convnet4"
width = 4
embedding_dim = 8

[train.loss]
kind = "triplet"
margin = 0.2

[train.miner]
kind = "batch-hard"

[train.sampler]
classes_per_batch = 2
samples_per_class = 3
batches_per_epoch = 4
"#;

#[derive(Default)]
struct Steps(Vec<u64>, Vec<String>);
impl Observer for Steps {
    fn step(&mut self, s: &StepRecord) {
        self.0.push(s.loss.to_bits());
    }
    fn warn(&mut self, msg: &str) {
        self.1.push(msg.to_string());
    }
}

fn trainer(shape: &[usize], device: &Device) -> Trainer {
    let cfg = margin_train::parse_config(TRAIN, "lazy_feed.rs").unwrap().train;
    Trainer::with_sink(cfg, shape, Box::new(MemorySink::new()), device).unwrap()
}

fn weights(t: &margin_train::TrainOutcome, probe: &margin_data::Dataset) -> Vec<u32> {
    margin_models::embed(&t.model, probe, 64, false, &Device::flex()).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn lazy_and_in_memory_feeds_train_the_same_bits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = folder("same", 4, 5);
    let eager = load_images(&dir, &prep()).unwrap();
    let shape = eager.sample_shape.clone();
    let device = Device::flex().autodiff();
    let mut a = Steps::default();
    let in_memory = trainer(&shape, &device).fit(&eager, None, &mut a).unwrap();
    // A cache of 4 samples for 20: most batches decode again.
    let lazy = LazyImages::open(&dir, prep()).unwrap().with_cache(4 * eager.dim() * 4);
    let feed = Feed::lazy(Arc::new(lazy), LoaderOptions { workers: 3, depth: 1, skip_bad: false });
    let mut b = Steps::default();
    let lazily = trainer(&shape, &device).fit_feed(&feed, None, &mut b).unwrap();
    assert_eq!(a.0.len(), 8, "2 epochs of 4 steps");
    assert_eq!(a.0, b.0, "step losses");
    assert!(a.0.windows(2).any(|w| w[0] != w[1]), "the losses move: the comparison can fail");
    assert_eq!(weights(&in_memory, &eager), weights(&lazily, &eager), "final weights (their embeddings of every sample)");
    assert_eq!(in_memory.state.images_seen, lazily.state.images_seen);
    // The memory budget counts the loader: its cache bound and 3 × (1 + 1) + 1 batches of 6.
    let mem = feed.loader_memory(6).expect("a lazy feed has a loader");
    assert_eq!((mem.cache_bytes, mem.in_flight_samples, mem.sample_bytes), (4 * eager.dim() as u64 * 4, 42, eager.dim() as u64 * 4));
    assert!(Feed::Memory(std::borrow::Cow::Borrowed(&eager)).loader_memory(6).is_none(), "data in memory is loaded already");
    let cfg = margin_train::parse_config(TRAIN, "lazy_feed.rs").unwrap().train;
    let with = margin_train::budget::training_budget_with(&cfg, &shape, 4, Some(mem));
    let without = margin_train::budget::training_budget(&cfg, &shape, 4);
    assert_eq!(with.total() - without.total(), mem.cache_bytes + 42 * mem.sample_bytes);
    let err = with.check_against("training", "lower it", without.total(), "test").unwrap_err().to_string();
    assert!(err.contains("the loader's decoded-sample cache"), "{err}");
}

#[test]
fn a_bad_training_file_stops_the_lazy_run_or_is_skipped_and_named() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = folder("bad", 3, 4);
    std::fs::write(dir.join("person1/broken.ppm"), b"P6\n20 16\n255\nshort").unwrap();
    let shape = prep().sample_shape();
    let device = Device::flex().autodiff();
    let open = |skip_bad: bool| Feed::lazy(Arc::new(LazyImages::open(&dir, prep()).unwrap()), LoaderOptions { workers: 2, depth: 1, skip_bad });
    // 2 epochs × 4 batches of 2 classes × 3 from 3 classes: the bad file is drawn.
    let e = trainer(&shape, &device).fit_feed(&open(false), None, &mut Steps::default()).err().expect("a bad file stops the run").to_string();
    assert!(e.contains("broken.ppm"), "{e}");
    let feed = open(true);
    let mut obs = Steps::default();
    trainer(&shape, &device).fit_feed(&feed, None, &mut obs).unwrap();
    let skipped = feed.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].0.ends_with(&Path::new("person1").join("broken.ppm").display().to_string()), "{skipped:?}");
    assert_eq!(obs.1.iter().filter(|w| w.contains("broken.ppm")).count(), 1, "warned once: {:?}", obs.1);
}
