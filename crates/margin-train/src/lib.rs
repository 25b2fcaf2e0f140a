//! # margin-train — the training job on Burn
//!
//! [`Trainer`]: P×K batches → encoder → the loss's single entry point (miner planned
//! inside) → optimizer, per-step statistics, a JSONL log, an atomic checkpoint every
//! epoch, exact resume — all written through a [`RunSink`] ([`FolderSink`], or
//! [`MemorySink`] for tests and bindings). [`run_job`]: the whole run of a configuration,
//! from files to `metrics.json` — what `margin train` calls, usable without the CLI.
//! A resume continues exactly the run the folder holds: the run manifest ([`manifest`])
//! refuses an edited configuration or other data, the checkpoint pointer is validated
//! ([`parse_pointer`]), and [`fault`] is the test-only hook of the kill test. [`sweep`]:
//! `margin sweep` — a grid of short runs validated on held-out training classes, with the
//! active-fraction verdicts, resumable, and `best.toml`.
//!
//! ## Modules
//!
//! - the trainer: `fit` = `step` + `close_epoch`; `checkpoint.rs` (atomic checkpoints, exact
//!   resume, the validated pointer); everything written through a `RunSink` (a folder, or memory
//!   for tests and bindings); `manifest.rs` (the run manifest that makes `--resume` honest);
//!   `fault.rs` (the test-only kill points);
//! - `TrainConfig` (loss, `MinerSpec`, optimizer, schedule, sampler, augmentation); `run_job` (the
//!   whole run: files → `metrics.json`);
//! - `feed.rs`: where batches come from — a `Dataset` in memory, or `LazyImages` decoded by
//!   `Prefetch` workers while the step runs, the same bits either way; `run_job` trains picture
//!   sources lazily;
//! - `gallery`: the report's neighbours and `metrics.json`'s `test_by_class` (per-class P@1,
//!   confused pairs, by name);
//! - `param_loss.rs`: the losses with class parameters in a run — built at `fit` for the training
//!   classes, own optimiser and learning rate, `loss.bpk` + `loss_optimizer.bpk` in each
//!   checkpoint; seeded by `margin::param_rng`, the one stream `margin loss --seed` and
//!   `margin.losses`' `seed=` also draw from;
//! - `text_eval`: the text protocols — closed-set, open-set, STS-B — over any embedder closure,
//!   named in their `metrics.json`;
//! - `calibrate` + `dedup_calibrate`: the card's verification and dedup thresholds on the held-out
//!   classes;
//! - `text_train`: fine-tuning a sentence encoder (`TextTrainer`, P×K batches of utterances,
//!   per-step `schedule` (warm-up + linear/cosine decay), `grad_clip` (global norm), freezing,
//!   epoch checkpoints with the image trainer's pointer);
//! - `fused_adamw`: AdamW as one in-place pass per parameter on the CPU (Burn's formulas and
//!   state; Burn's own `AdamW` elsewhere), what `optimizer = { kind = "adamw" }` and text
//!   fine-tuning use;
//! - `text_job`: a text run (config with `encoder`, frozen baseline, fine-tune, the run folder
//!   saved as a sentence-transformers folder + `text_model.json`, before/after `metrics.json`);
//! - `device`: what `--device` (`train`, `embed`, `loss`; `[train] device` in the TOML) selects,
//!   `DeviceSpec` (`cpu` | `cuda[:N]` | `wgpu[:N]` | `vulkan`, parsed once by
//!   `FromStr`/serde), brought up before anything runs — a device the build lacks names its cargo
//!   feature, one the machine lacks gives the backend's reason; not part of what `--resume`
//!   checks. The fused CPU kernels and the losses' host path serve `flex` only (a device check
//!   where each is called); every other device takes Burn's ops and the device path.
//!
//! - `sweep/`: `margin sweep` as a library, one concept a file — `grid.rs` (`--param
//!   PATH=V1,V2` values typed as TOML, the cartesian grid, point ids = SHA-256 of the canonical
//!   params), `overrides.rs` (values set in the parsed TOML table before it is typed, unknown
//!   paths refused; `best.toml` = the original text with the best values spliced in at the
//!   `toml` parser's spans, comments kept), `run.rs` (one run: validation classes = the
//!   configuration's or 20 % of the training classes by the calibration-share rule, train or
//!   resume with the trainer's checkpoints, validation MAP@R / P@1 / AUC, curves from
//!   `train_log.jsonl`), `verdict.rs` (`Verdict` and its named thresholds), `record.rs`,
//!   `state.rs` (`sweep.json` / `sweep.jsonl`, resume, refusing another sweep's folder),
//!   `best.rs`; `mod.rs` schedules `--jobs` runs, each in its own rayon pool.
//!
//! The run folder and the sweep folder this crate writes: `docs/formats.md` at the repository root.

#![warn(missing_docs)]

pub mod augment;
mod checkpoint;
pub mod budget;
pub mod calibrate;
mod config;
mod loss_spec;
pub mod dedup_calibrate;
pub mod device;
mod distance_form;
pub mod feed;
mod head_lr;
pub mod fault;
pub mod fused_adamw;
mod job;
pub mod gallery;
pub mod manifest;
mod miner_spec;
pub mod param_loss;
pub mod photo_augment;
mod grad_clip;
pub mod schedule;
mod sink;
pub mod sweep;
mod trainer;
pub mod text_eval;
pub mod text_job;
pub mod text_train;

pub use config::{AugmentConfig, BuiltLoss, LossSpec, OptimizerSpec, SamplerConfig, Schedule, TrainConfig, validate_run};
pub use device::{DeviceError, DeviceSpec, DeviceSpecError};
pub use miner_spec::MinerSpec;
pub use grad_clip::{clip_global_norm, global_norm};
pub use checkpoint::{Pointer, PointerError, parse_pointer};
pub use sink::{FolderSink, MemorySink, RunSink};
pub use job::{DEFAULT_CONFIG, Evaluation, JobObserver, JobOptions, JobOutcome, RunConfig, config_toml, omniglot_one_shot, parse_config, run_job};
pub use trainer::{EpochRecord, Observer, Silent, StepRecord, TrainError, TrainOutcome, TrainState, Trainer, save_model};
