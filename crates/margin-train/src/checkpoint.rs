//! Checkpoints of a run, through its [`RunSink`]: `checkpoints/epoch-NNNN/{model.bpk,
//! optimizer.bpk, state.json}` published as one folder; `checkpoint.json`, an atomically
//! replaced pointer to the latest complete one; `checkpoints/best/` (the best epoch by
//! validation MAP@R). A kill at any moment leaves either the previous checkpoint or the
//! new one, never a half-written one.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use margin_models::EmbeddingNet;
use serde::{Deserialize, Serialize};

use crate::{RunSink, TrainError, TrainState};

/// The training log's name in the run.
pub(crate) const LOG: &str = "train_log.jsonl";

pub(crate) fn ckpt_err(sink: &dyn RunSink, name: &str, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint { path: sink.locate(name), reason: reason.to_string() }
}

fn required(sink: &dyn RunSink, name: &str) -> Result<Vec<u8>, TrainError> {
    sink.read(name)?.ok_or_else(|| ckpt_err(sink, name, "missing (is this a run folder of `margin train`?)"))
}

/// `checkpoint.json`: the latest complete checkpoint.
#[derive(Serialize, Deserialize)]
struct Pointer {
    epoch: usize,
    dir: String,
}

/// The latest complete checkpoint of the run: its folder's name and state.
pub(crate) fn latest(sink: &dyn RunSink) -> Result<(String, TrainState), TrainError> {
    let ptr: Pointer = serde_json::from_slice(&required(sink, "checkpoint.json")?)
        .map_err(|e| ckpt_err(sink, "checkpoint.json", format!("corrupt checkpoint pointer: {e}")))?;
    let state_name = format!("{}/state.json", ptr.dir);
    let state: TrainState = serde_json::from_slice(&required(sink, &state_name)?)
        .map_err(|e| ckpt_err(sink, &state_name, format!("corrupt state: {e}")))?;
    Ok((ptr.dir, state))
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
pub(crate) fn commit_epoch(sink: &mut dyn RunSink, model: &EmbeddingNet, optim: &ModuleOptimizer, state: &TrainState, is_best: bool) -> Result<(), TrainError> {
    let epoch = state.epoch;
    let name = format!("epoch-{epoch:04}");
    let dir = format!("checkpoints/{name}");
    let model_bytes = model.clone().into_record().into_bytes().map_err(|e| ckpt_err(sink, &dir, e))?;
    let opt_bytes = optim.into_bytes().map_err(|e| ckpt_err(sink, &dir, e))?;
    let state_bytes = serde_json::to_vec_pretty(state).expect("state serialises");
    let files: [(&str, &[u8]); 3] = [("model.bpk", &model_bytes), ("optimizer.bpk", &opt_bytes), ("state.json", &state_bytes)];
    sink.publish(&dir, &files)?;
    let pointer = serde_json::to_vec(&Pointer { epoch, dir }).expect("a pointer serialises");
    sink.write("checkpoint.json", &pointer)?;
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
