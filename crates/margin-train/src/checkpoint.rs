//! Checkpoints of a run, through its [`RunSink`]: `checkpoints/epoch-NNNN/{model.bpk,
//! optimizer.bpk, state.json}` (and a loss with class parameters' `loss.bpk`,
//! `loss_optimizer.bpk`: `crate::param_loss`) published as one folder; `checkpoint.json`, an atomically
//! replaced pointer to the latest complete one; `checkpoints/best/` (the best epoch by
//! validation MAP@R). A kill at any moment leaves either the previous checkpoint or the
//! new one, never a half-written one.
//!
//! Reading a run ([`restore`]) trusts nothing it reads. The pointer is parsed by
//! [`parse_pointer`] (bytes in, so it can be fuzzed and replayed): its `dir` must be the
//! plain name `checkpoints/epoch-NNNN` of its own `epoch` — no `..`, no absolute path, no
//! other folder, so a pointer cannot hand the run another run's model — and the state it
//! leads to must be of that epoch. A run without a pointer (killed after its first
//! checkpoint folder was published but before the pointer was written, or with the
//! pointer deleted) resumes from its newest complete `checkpoints/epoch-*` (complete: all
//! three files present and loadable, the state's epoch the folder's); with none, the
//! error says the run has no complete checkpoint and how to start it again.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use margin_models::EmbeddingNet;
use serde::{Deserialize, Serialize};

use crate::{RunSink, TrainError, TrainState};

/// The training log's name in the run.
pub(crate) const LOG: &str = "train_log.jsonl";

/// The pointer's name in the run.
pub(crate) const POINTER: &str = "checkpoint.json";

pub(crate) fn ckpt_err(sink: &dyn RunSink, name: &str, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint { path: sink.locate(name), reason: reason.to_string() }
}

fn required(sink: &dyn RunSink, name: &str) -> Result<Vec<u8>, TrainError> {
    sink.read(name)?.ok_or_else(|| ckpt_err(sink, name, "missing (is this a run folder of `margin train`?)"))
}

/// `checkpoint.json`: the latest complete checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// The epoch of the checkpoint.
    pub epoch: usize,
    /// Its folder, `checkpoints/epoch-NNNN`.
    pub dir: String,
}

/// Why a checkpoint pointer is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointerError {
    /// Not the pointer's JSON.
    #[error("corrupt checkpoint pointer: {0}")]
    Json(String),
    /// `dir` is not a checkpoint folder of this run.
    #[error("corrupt checkpoint pointer: dir {dir:?} is not a checkpoint folder of this run (expected checkpoints/epoch-NNNN, inside the run folder)")]
    OutsideRun {
        /// The pointer's `dir`.
        dir: String,
    },
    /// `dir` names another epoch than `epoch` (or epoch 0, which no checkpoint has).
    #[error("corrupt checkpoint pointer: dir {dir:?} is not the checkpoint folder of epoch {epoch}")]
    EpochMismatch {
        /// The pointer's `dir`.
        dir: String,
        /// The pointer's `epoch`.
        epoch: usize,
    },
}

/// The epoch of a checkpoint folder's name `epoch-NNNN` (at least four digits).
fn epoch_of(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("epoch-")?;
    (digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Parses and validates `checkpoint.json`'s bytes (see the module docs).
pub fn parse_pointer(bytes: &[u8]) -> Result<Pointer, PointerError> {
    let ptr: Pointer = serde_json::from_slice(bytes).map_err(|e| PointerError::Json(e.to_string()))?;
    let Some(epoch) = ptr.dir.strip_prefix("checkpoints/").and_then(epoch_of) else {
        return Err(PointerError::OutsideRun { dir: ptr.dir });
    };
    if epoch == 0 || epoch != ptr.epoch || format!("checkpoints/epoch-{epoch:04}") != ptr.dir {
        return Err(PointerError::EpochMismatch { dir: ptr.dir, epoch: ptr.epoch });
    }
    Ok(ptr)
}

/// A checkpoint read back: its folder, state, model and optimizer.
pub(crate) struct Restored {
    pub dir: String,
    pub state: TrainState,
    pub model: EmbeddingNet,
    pub optim: ModuleOptimizer,
}

/// The state of the checkpoint folder `dir`, checked to be of `epoch`.
fn read_state(sink: &dyn RunSink, dir: &str, epoch: usize) -> Result<TrainState, TrainError> {
    let name = format!("{dir}/state.json");
    let state: TrainState = serde_json::from_slice(&required(sink, &name)?).map_err(|e| ckpt_err(sink, &name, format!("corrupt state: {e}")))?;
    if state.epoch != epoch {
        return Err(ckpt_err(sink, &name, format!("holds epoch {}, but belongs to epoch {epoch} ({dir})", state.epoch)));
    }
    Ok(state)
}

/// The checkpoint folder `dir` of `epoch`, loaded: `init` builds the model and optimizer
/// (of the stored configuration) to load the tensors into.
fn load_dir(
    sink: &dyn RunSink,
    dir: &str,
    epoch: usize,
    init: &mut dyn FnMut(&TrainState) -> Result<(EmbeddingNet, ModuleOptimizer), TrainError>,
) -> Result<Restored, TrainError> {
    let state = read_state(sink, dir, epoch)?;
    let (model, optim) = init(&state)?;
    let model = load_model(sink, &format!("{dir}/model.bpk"), model)?;
    let optim = load_optimizer(sink, &format!("{dir}/optimizer.bpk"), optim)?;
    Ok(Restored { dir: dir.to_string(), state, model, optim })
}

/// The latest complete checkpoint of the run: the pointer's, or without a pointer the
/// newest complete epoch folder (see the module docs).
pub(crate) fn restore(
    sink: &dyn RunSink,
    init: &mut dyn FnMut(&TrainState) -> Result<(EmbeddingNet, ModuleOptimizer), TrainError>,
) -> Result<Restored, TrainError> {
    if let Some(bytes) = sink.read(POINTER)? {
        let ptr = parse_pointer(&bytes).map_err(|e| ckpt_err(sink, POINTER, e))?;
        return load_dir(sink, &ptr.dir, ptr.epoch, init);
    }
    let mut epochs: Vec<(usize, String)> = sink.subdirs("checkpoints")?.into_iter().filter_map(|d| epoch_of(&d).map(|e| (e, d))).collect();
    epochs.sort();
    let mut skipped = Vec::new();
    for (epoch, d) in epochs.into_iter().rev() {
        match load_dir(sink, &format!("checkpoints/{d}"), epoch, init) {
            Ok(r) => return Ok(r),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    let run = match sink.locate("checkpoints").parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("(the run)"),
    };
    let why = if skipped.is_empty() { String::new() } else { format!(" (incomplete: {})", skipped.join("; ")) };
    Err(TrainError::Resume {
        run,
        reason: format!(
            "the run has no complete checkpoint: {} is missing and no checkpoints/epoch-* folder is complete{why}; it stopped before its first epoch was saved — start it again: `margin train --config {} --out NEWDIR`",
            POINTER,
            sink.locate("config.toml").display()
        ),
    })
}

/// `model` with the weights of `name` (a `model.bpk` of this architecture).
pub(crate) fn load_model(sink: &dyn RunSink, name: &str, model: EmbeddingNet) -> Result<EmbeddingNet, TrainError> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(required(sink, name)?)).map_err(|e| ckpt_err(sink, name, e))?;
    model.try_load_record(record).map_err(|e| ckpt_err(sink, name, e))
}

/// `optim` with the state of `name` (an `optimizer.bpk`).
pub(crate) fn load_optimizer(sink: &dyn RunSink, name: &str, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(required(sink, name)?)).map_err(|e| ckpt_err(sink, name, e))
}

/// Keeps the log lines of epochs up to `epoch` (a resumed run drops the interrupted one's).
pub(crate) fn truncate_log(sink: &mut dyn RunSink, epoch: usize) -> Result<(), TrainError> {
    let log = String::from_utf8_lossy(&sink.read(LOG)?.unwrap_or_default()).into_owned();
    let kept: String = log
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["epoch"].as_u64()).is_some_and(|e| e as usize <= epoch))
        .flat_map(|l| [l, "\n"])
        .collect();
    sink.write(LOG, kept.as_bytes())
}

/// Publishes the checkpoint of `state.epoch` and points `checkpoint.json` at it; copies it
/// to `best/` when `is_best`; removes the older epoch checkpoints.
///
/// `extra` are more files of the checkpoint (a parametric loss's: `crate::param_loss`).
pub(crate) fn commit_epoch(
    sink: &mut dyn RunSink,
    model: &EmbeddingNet,
    optim: &ModuleOptimizer,
    state: &TrainState,
    extra: &[(&'static str, Vec<u8>)],
    is_best: bool,
) -> Result<(), TrainError> {
    let epoch = state.epoch;
    let name = format!("epoch-{epoch:04}");
    let dir = format!("checkpoints/{name}");
    let model_bytes = model.clone().into_record().into_bytes().map_err(|e| ckpt_err(sink, &dir, e))?;
    let opt_bytes = optim.into_bytes().map_err(|e| ckpt_err(sink, &dir, e))?;
    let state_bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    let mut files: Vec<(&str, &[u8])> = vec![("model.bpk", &model_bytes), ("optimizer.bpk", &opt_bytes), ("state.json", &state_bytes)];
    files.extend(extra.iter().map(|(name, bytes)| (*name, bytes.as_slice())));
    sink.publish(&dir, &files)?;
    let pointer = serde_json::to_vec(&Pointer { epoch, dir }).expect("a pointer serialises");
    sink.write(POINTER, &pointer)?;
    if is_best {
        sink.publish("checkpoints/best", &files)?;
    }
    // Keep only the latest epoch checkpoint (and best/).
    for old in sink.subdirs("checkpoints")? {
        if old.starts_with("epoch-") && old != name {
            sink.remove_dir(&format!("checkpoints/{old}"))?;
        }
    }
    Ok(())
}

/// The model of `checkpoints/best/` (loaded into `model`'s architecture).
pub(crate) fn best_model(sink: &dyn RunSink, model: EmbeddingNet) -> Result<EmbeddingNet, TrainError> {
    load_model(sink, "checkpoints/best/model.bpk", model)
}

/// A parametric loss's files of the checkpoint folder `dir` (none for a stateless loss).
pub(crate) fn stored_loss(sink: &dyn RunSink, dir: &str, config: &crate::TrainConfig) -> Result<crate::param_loss::LossState, TrainError> {
    use crate::param_loss::{LossState, OPTIM_FILE, PARAMS_FILE};
    if !config.loss.is_parametric() {
        return Ok(LossState::Fresh);
    }
    Ok(LossState::Stored { dir: dir.to_string(), params: required(sink, &format!("{dir}/{PARAMS_FILE}"))?, optim: required(sink, &format!("{dir}/{OPTIM_FILE}"))? })
}
