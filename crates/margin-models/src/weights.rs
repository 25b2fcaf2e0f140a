//! Weights as `model.safetensors` (burn-store), written atomically.

use std::path::Path;

use burn::tensor::Device;
use margin_data::{ModelCard, write_atomic};

use crate::{BuildEncoder, EmbeddingNet, ModelError};

fn weights_err(path: &Path, reason: impl ToString) -> ModelError {
    ModelError::Weights { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Saves a model as safetensors (burn-store) atomically.
pub fn save_safetensors(model: &EmbeddingNet, path: &Path) -> Result<(), ModelError> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let mut store = SafetensorsStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| weights_err(path, e))?;
    let bytes = store.get_bytes().map_err(|e| weights_err(path, e))?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Loads a model saved by [`save_safetensors`] with the architecture in `card`.
pub fn load_safetensors(card: &ModelCard, path: &Path, device: &Device) -> Result<EmbeddingNet, ModelError> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let bytes = std::fs::read(path).map_err(|e| margin_data::DataError::io(path, e))?;
    let mut model = card.model.init(&card.sample_shape, device)?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let res = model.load_from(&mut store).map_err(|e| weights_err(path, format!("not a usable safetensors model: {e}")))?;
    if !res.missing.is_empty() || !res.errors.is_empty() {
        return Err(weights_err(path, format!("does not match the model in model.json (missing {:?}, errors {:?})", res.missing, res.errors)));
    }
    Ok(model)
}
