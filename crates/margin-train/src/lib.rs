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
