//! The stable half of the `pth` fuzz target (`fuzz/fuzz_targets/pth.rs`, nightly): every
//! committed seed (`fuzz/corpus/pth/`) and a seeded mutation search over them go through
//! margin's own `.pth` loading — `resnet::read_tensors` and `ResNet::from_file`, which
//! checks keys, shapes and values — as a user's file would. Each input must give `Ok` or
//! an error naming the file; a panic anywhere (even one `limits::guarded` turns into an
//! error) fails the test, seen through a panic hook.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Device;
use margin_data::ResnetDepth;
use margin_models::resnet::{ResNet, detect, read_tensors};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pth");
    let mut v: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v.into_iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())).collect()
}

/// xorshift64*: the same mutations everywhere.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// Bit flips, byte writes, truncations, `0xFF` runs and duplicated slices.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(d.len());
        match rng.below(5) {
            0 => d[at] ^= 1 << rng.below(8),
            1 => d[at] = rng.below(256) as u8,
            2 => d.truncate(at),
            3 => {
                let end = (at + 8).min(d.len());
                d.splice(at..end, [0xFF; 8]);
            }
            _ => {
                let (a, b) = (rng.below(d.len()), rng.below(d.len()));
                let s = d[a.min(b)..a.max(b).min(a.min(b) + 64)].to_vec();
                d.splice(at..at, s);
            }
        }
        if d.is_empty() {
            d.push(0);
        }
    }
    d
}

/// Reads `data` as a `.pth` file (and, with `build`, loads it as a ResNet-18, which builds
/// the network first: the seeds only); `true` when the reader accepted it.
fn check(path: &PathBuf, data: &[u8], label: &str, build: bool) -> bool {
    std::fs::write(path, data).unwrap();
    let before = PANICS.load(Ordering::SeqCst);
    let read = read_tensors(path);
    match &read {
        Ok(t) => {
            for v in t.values() {
                let _ = v.to_bytes();
            }
            let _ = detect(t);
        }
        Err(e) => assert!(e.to_string().contains(&path.display().to_string()), "{label}: the error names the file: {e}"),
    }
    if build && let Err(e) = ResNet::from_file(ResnetDepth::R18, path, &Device::flex()) {
        assert!(e.to_string().contains(&path.display().to_string()), "{label}: the error names the file: {e}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), before, "{label}: a panic while reading (the input is {})", path.display());
    read.is_ok()
}

#[test]
fn pth_seeds_and_their_mutations_read_or_fail_cleanly() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let files = corpus();
    assert!(files.len() >= 3, "at least three seeds");
    let path = std::env::temp_dir().join(format!("margin-fuzz-replay-{}.pth", std::process::id()));
    let accepted = files.iter().filter(|(name, data)| check(&path, data, name, true)).count();
    assert!(accepted >= 3, "the seeds are readable .pth files ({accepted} of {})", files.len());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..1500 {
        let (_, seed) = &files[rng.below(files.len())];
        check(&path, &mutate(&mut rng, seed), &format!("mutation {i}"), false);
    }
    let _ = std::fs::remove_file(&path);
}
