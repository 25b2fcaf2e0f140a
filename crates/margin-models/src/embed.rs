//! Embedding a dataset with a model, in inference mode.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use margin_data::Dataset;

use crate::EmbeddingNet;

/// Embeds `data` with `model` in inference mode (BatchNorm running statistics),
/// `batch` samples per forward; optionally L2-normalises rows. Returns `len × dim`.
pub fn embed(model: &EmbeddingNet, data: &Dataset, batch: usize, normalize: bool, device: &Device) -> Vec<f32> {
    let inner = device.clone().inner();
    let m = model.valid();
    let d = data.dim();
    let mut out = Vec::new();
    for start in (0..data.len()).step_by(batch.max(1)) {
        let n = batch.min(data.len() - start);
        let x = Tensor::<2>::from_data(TensorData::new(data.features[start * d..(start + n) * d].to_vec(), [n, d]), &inner);
        let e = m.forward_flat(x, &data.sample_shape);
        out.extend(e.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data"));
    }
    if normalize {
        let dim = out.len() / data.len().max(1);
        l2_normalize_rows(&mut out, dim);
    }
    out
}

/// L2-normalises each row of a row-major matrix in place (zero rows stay zero).
pub fn l2_normalize_rows(x: &mut [f32], dim: usize) {
    for row in x.chunks_mut(dim.max(1)) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
}
