//! Fuzz target `pth`: torch `.pth` files (zip or legacy pickle) through `pytorch-reader`,
//! the reader under burn-store's `PytorchStore`, which `margin_models::resnet::read_tensors`
//! calls behind `margin_data::limits::guarded`. The target calls the reader directly and
//! reads every tensor's bytes, without the guard, so a panic in it is a finding (margin
//! turns one into an error naming the file), as are aborts, hangs and huge allocations.
//! Building margin-models here would compile all of Burn under the sanitizer for a layer
//! of key and shape checks; those run on the seeds and their mutations on stable in
//! `crates/margin-models/tests/fuzz_replay_pth.rs`.
#![no_main]

use std::path::PathBuf;

thread_local! {
    // The reader opens a path: the input goes to one file per process, rewritten per run.
    static PATH: PathBuf = std::env::temp_dir().join(format!("margin-fuzz-pth-{}.pth", std::process::id()));
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    PATH.with(|p| {
        std::fs::write(p, data).expect("the scratch file is writable");
        if let Ok(r) = pytorch_reader::PytorchReader::new(p) {
            for t in r.tensors().values() {
                let _ = t.read();
            }
        }
    });
});
