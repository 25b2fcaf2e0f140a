//! Weights as `model.safetensors` (burn-store) beside their card `model.json`, written
//! atomically, checked against each other on load.
//!
//! The two files are one unit, but two files cannot be renamed at once. Design: the
//! weights are written first and carry, in their safetensors metadata
//! (`margin.model_card_sha256`), the SHA-256 of the card they belong to (its canonical
//! JSON, as [`card_bytes`] writes it); the card is written last. A reader that sees a
//! card and weights from different saves (a save interrupted between the two renames, a
//! card edited or replaced by hand) finds the hash wrong and refuses, naming both files;
//! weights from before this rule (no hash) are still read. Independently of the hash,
//! every tensor's shape is checked against the architecture the card describes, and a
//! mismatch names the file, the tensor and both shapes.

use std::path::Path;

use burn::tensor::Device;
use margin_data::{ModelCard, write_atomic};
use sha2::{Digest, Sha256};

use crate::{BuildEncoder, EmbeddingNet, ModelError};

/// The metadata key holding the SHA-256 of the card the weights belong to.
pub const CARD_HASH_KEY: &str = "margin.model_card_sha256";

fn weights_err(path: &Path, reason: impl ToString) -> ModelError {
    ModelError::Weights { path: path.to_path_buf(), reason: reason.to_string() }
}

/// The card as `model.json` holds it (pretty JSON).
pub fn card_bytes(card: &ModelCard) -> Vec<u8> {
    serde_json::to_vec_pretty(card).expect("a model card serialises")
}

/// The hex SHA-256 of the card's canonical JSON.
pub fn card_hash(card: &ModelCard) -> String {
    Sha256::digest(card_bytes(card)).iter().map(|b| format!("{b:02x}")).collect()
}

/// The safetensors bytes of `model`, carrying the hash of `card` (the card it is saved
/// with); refused when `card` does not describe `model` (checked by loading the bytes into
/// the card's architecture, on the host: the error names the tensor).
pub fn safetensors_bytes(model: &EmbeddingNet, card: &ModelCard, path: &Path) -> Result<Vec<u8>, ModelError> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let mut store = SafetensorsStore::from_bytes(None).metadata(CARD_HASH_KEY, card_hash(card));
    model.save_into(&mut store).map_err(|e| weights_err(path, e))?;
    let bytes = store.get_bytes().map_err(|e| weights_err(path, e))?;
    load_bytes(card, bytes.clone(), path, &Device::flex())?;
    Ok(bytes)
}

/// Saves `model` as safetensors at `path` atomically, bound to `card` (see the module docs).
pub fn save_safetensors(model: &EmbeddingNet, card: &ModelCard, path: &Path) -> Result<(), ModelError> {
    let bytes = safetensors_bytes(model, card, path)?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Saves `model.safetensors` then `model.json` in `dir` (weights first, card last).
pub fn save_model(model: &EmbeddingNet, card: &ModelCard, dir: &Path) -> Result<(), ModelError> {
    save_safetensors(model, card, &dir.join("model.safetensors"))?;
    write_atomic(&dir.join("model.json"), &card_bytes(card))?;
    Ok(())
}

/// The card of `dir/model.json` and the model of `dir/model.safetensors`, checked against
/// each other.
pub fn load_model(dir: &Path, device: &Device) -> Result<(ModelCard, EmbeddingNet), ModelError> {
    let card = ModelCard::read(&dir.join("model.json"))?;
    let model = load_safetensors(&card, &dir.join("model.safetensors"), device)?;
    Ok((card, model))
}

/// The `__metadata__` map of a safetensors file's header (empty when absent).
fn header_metadata(bytes: &[u8], path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, ModelError> {
    let bad = |why: &str| weights_err(path, format!("not a safetensors file: {why}"));
    let n = bytes.get(..8).ok_or_else(|| bad("shorter than its 8-byte header length"))?;
    let n = u64::from_le_bytes(n.try_into().expect("8 bytes"));
    let end = usize::try_from(n).ok().and_then(|n| n.checked_add(8)).filter(|&e| e <= bytes.len()).ok_or_else(|| bad("the header length runs past the end of the file"))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..end]).map_err(|e| bad(&format!("its header is not JSON ({e})")))?;
    Ok(header.get("__metadata__").and_then(|m| m.as_object()).cloned().unwrap_or_default())
}

/// Loads a model saved by [`save_safetensors`] with the architecture in `card`, refusing
/// weights saved with another card and weights whose tensors do not fit the card's model.
pub fn load_safetensors(card: &ModelCard, path: &Path, device: &Device) -> Result<EmbeddingNet, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| margin_data::DataError::io(path, e))?;
    load_bytes(card, bytes, path, device)
}

/// [`load_safetensors`] of the bytes of `path`.
fn load_bytes(card: &ModelCard, bytes: Vec<u8>, path: &Path, device: &Device) -> Result<EmbeddingNet, ModelError> {
    use burn::store::{ApplyError, ModuleSnapshot, SafetensorsStore};
    let card_file = path.with_file_name("model.json");
    if let Some(stored) = header_metadata(&bytes, path)?.get(CARD_HASH_KEY).and_then(|v| v.as_str()) {
        let expected = card_hash(card);
        if stored != expected {
            return Err(weights_err(
                path,
                format!(
                    "was saved with a different model card than {} (card hash {stored}, this card's {expected}): the card was edited or replaced after training, or the save was interrupted; use the run's own model.json or retrain",
                    card_file.display()
                ),
            ));
        }
    }
    let mut model = card.model.init(&card.sample_shape, device)?;
    // Burn's own validation is off so that its findings come back as data, reported below
    // with the file and tensor (every error, missing and unused tensor is still refused).
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(false).allow_partial(true);
    let res = model.load_from(&mut store).map_err(|e| weights_err(path, format!("not a usable safetensors model: {e}")))?;
    if let Some(e) = res.errors.first() {
        let what = match e {
            ApplyError::ShapeMismatch { path: t, expected, found } => {
                format!("tensor `{t}` has shape {:?}, the model of {} expects {:?}", found.as_slice(), card_file.display(), expected.as_slice())
            }
            other => other.to_string(),
        };
        return Err(weights_err(path, format!("does not match {}: {what}", card_file.display())));
    }
    if let Some((t, _)) = res.missing.first() {
        return Err(weights_err(path, format!("does not match {}: tensor `{t}` of its model is missing", card_file.display())));
    }
    if let Some(t) = res.unused.first() {
        return Err(weights_err(path, format!("does not match {}: tensor `{t}` is not part of its model", card_file.display())));
    }
    Ok(model)
}
