//! Fuzz target `spec`: the dispatch is `margin_data::fuzzing` (shared with the stable
//! replay test, crates/margin-data/tests/fuzz_replay.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = margin_data::fuzzing::run(margin_data::fuzzing::Target::Spec, data);
});
