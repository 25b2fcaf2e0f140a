//! Checkpoints of a run folder: `checkpoints/epoch-NNNN/{model.bpk, optimizer.bpk,
//! state.json}` written to a temporary folder, synced, renamed; `checkpoint.json`, an
//! atomically replaced pointer to the latest complete one; `checkpoints/best/` (a copy of
//! the best epoch by validation MAP@R). A kill at any moment leaves either the previous
//! checkpoint or the new one, never a half-written one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use margin_data::{DataError, write_atomic};
use margin_models::EmbeddingNet;
use serde::{Deserialize, Serialize};

use crate::{TrainError, TrainState};

pub(crate) fn ckpt_err(path: &Path, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint { path: path.to_path_buf(), reason: reason.to_string() }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| DataError::io(path, e).into()
}

/// `checkpoint.json`: the latest complete checkpoint.
#[derive(Serialize, Deserialize)]
struct Pointer {
    epoch: usize,
    dir: String,
}

/// The latest complete checkpoint of the run in `out`: its folder and state.
pub(crate) fn latest(out: &Path) -> Result<(PathBuf, TrainState), TrainError> {
    let ptr_path = out.join("checkpoint.json");
    let ptr: Pointer = serde_json::from_slice(&std::fs::read(&ptr_path).map_err(io(&ptr_path))?)
        .map_err(|e| ckpt_err(&ptr_path, format!("corrupt checkpoint pointer: {e}")))?;
    let dir = out.join(&ptr.dir);
    let state_path = dir.join("state.json");
    let state: TrainState = serde_json::from_slice(&std::fs::read(&state_path).map_err(io(&state_path))?)
        .map_err(|e| ckpt_err(&state_path, format!("corrupt state: {e}")))?;
    Ok((dir, state))
}

/// `model` with the weights of `path` (a `model.bpk` of this architecture).
pub(crate) fn load_model(path: &Path, model: EmbeddingNet) -> Result<EmbeddingNet, TrainError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(|e| ckpt_err(path, e))?;
    model.try_load_record(record).map_err(|e| ckpt_err(path, e))
}

/// `optim` with the state of `path` (an `optimizer.bpk`).
pub(crate) fn load_optimizer(path: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    optim.from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes)).map_err(|e| ckpt_err(path, e))
}

/// Keeps the log lines of epochs up to `epoch` (a resumed run drops the interrupted one's).
pub(crate) fn truncate_log(out: &Path, epoch: usize) -> Result<(), TrainError> {
    let log_path = out.join("train_log.jsonl");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let kept: String = log
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["epoch"].as_u64()).is_some_and(|e| e as usize <= epoch))
        .flat_map(|l| [l, "\n"])
        .collect();
    write_atomic(&log_path, kept.as_bytes())?;
    Ok(())
}

/// Writes the checkpoint of `state.epoch` and points `checkpoint.json` at it; copies it to
/// `best/` when `is_best`; removes the older epoch checkpoints.
pub(crate) fn commit_epoch(out: &Path, model: &EmbeddingNet, optim: &ModuleOptimizer, state: &TrainState, is_best: bool) -> Result<(), TrainError> {
    let epoch = state.epoch;
    let root = out.join("checkpoints");
    let name = format!("epoch-{epoch:04}");
    write_folder(&root, &name, model, optim, state)?;
    let pointer = serde_json::to_vec(&Pointer { epoch, dir: format!("checkpoints/{name}") }).expect("a pointer serialises");
    write_atomic(&out.join("checkpoint.json"), &pointer)?;
    if is_best {
        let b = root.join("best");
        let _ = std::fs::remove_dir_all(&b);
        copy_dir(&root.join(&name), &b)?;
    }
    // Keep only the latest epoch checkpoint (and best/).
    if let Ok(rd) = std::fs::read_dir(&root) {
        for ent in rd.flatten() {
            let n = ent.file_name().to_string_lossy().into_owned();
            if n.starts_with("epoch-") && n != name {
                let _ = std::fs::remove_dir_all(ent.path());
            }
        }
    }
    Ok(())
}

/// The model of `checkpoints/best/` (loaded into `model`'s architecture).
pub(crate) fn best_model(out: &Path, model: EmbeddingNet) -> Result<EmbeddingNet, TrainError> {
    load_model(&out.join("checkpoints").join("best").join("model.bpk"), model)
}

fn write_folder(root: &Path, name: &str, model: &EmbeddingNet, optim: &ModuleOptimizer, state: &TrainState) -> Result<PathBuf, TrainError> {
    let final_dir = root.join(name);
    let tmp = root.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let model_bytes = model.clone().into_record().into_bytes().map_err(|e| ckpt_err(&tmp, e))?;
    write_atomic(&tmp.join("model.bpk"), &model_bytes)?;
    let opt_bytes = optim.into_bytes().map_err(|e| ckpt_err(&tmp, e))?;
    write_atomic(&tmp.join("optimizer.bpk"), &opt_bytes)?;
    write_atomic(&tmp.join("state.json"), &serde_json::to_vec_pretty(state).expect("state serialises"))?;
    let _ = std::fs::remove_dir_all(&final_dir);
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    if let Ok(d) = std::fs::File::open(root) {
        let _ = d.sync_all();
    }
    Ok(final_dir)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), TrainError> {
    let tmp = to.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for ent in std::fs::read_dir(from).map_err(io(from))?.flatten() {
        std::fs::copy(ent.path(), tmp.join(ent.file_name())).map_err(|e| DataError::io(&ent.path(), e))?;
    }
    std::fs::rename(&tmp, to).map_err(io(to))?;
    Ok(())
}
