//! Embedding a dataset with a model, in inference mode.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use margin_data::Dataset;
use margin_data::tta::TestTimeAugment;

use crate::EmbeddingNet;

/// Embeds `data` with `model` in inference mode (BatchNorm running statistics),
/// `batch` samples per forward; optionally L2-normalises rows. Returns `len × dim`.
pub fn embed(model: &EmbeddingNet, data: &Dataset, batch: usize, normalize: bool, device: &Device) -> Vec<f32> {
    embed_views(model, data, batch, normalize, TestTimeAugment::None, device)
}

/// [`embed`] with test-time augmentation (`margin_data::tta`): each sample's embedding is
/// the mean over the views `tta` names — of the L2-normalised view embeddings, then
/// normalised, when `normalize`; of the raw ones otherwise. With one view it is [`embed`].
/// `tta` must have been validated against `data.sample_shape` (the configuration and the
/// model card are, when read).
///
/// # Shapes
/// `data`: `len` samples of `sample_shape` (`[c, h, w]` for shifted views); returns
/// `len × dim`, row-major.
pub fn embed_views(model: &EmbeddingNet, data: &Dataset, batch: usize, normalize: bool, tta: TestTimeAugment, device: &Device) -> Vec<f32> {
    let inner = device.clone().inner();
    let m = model.valid();
    let d = data.dim();
    let offsets = tta.offsets();
    let mut out = Vec::new();
    let mut shifted = Vec::new();
    for start in (0..data.len()).step_by(batch.max(1)) {
        let n = batch.min(data.len() - start);
        let rows = &data.features[start * d..(start + n) * d];
        let mut sum: Vec<f32> = Vec::new();
        for &(dx, dy) in &offsets {
            let values = if (dx, dy) == (0, 0) {
                rows.to_vec()
            } else {
                let [c, h, w] = data.sample_shape[..] else { panic!("shifted views of samples of shape {:?} (TestTimeAugment::validate refuses them)", data.sample_shape) };
                shifted.resize(rows.len(), 0.0);
                for (src, dst) in rows.chunks(d).zip(shifted.chunks_mut(d)) {
                    margin_data::tta::shift_image(src, c, h, w, dx, dy, dst);
                }
                shifted.clone()
            };
            let x = Tensor::<2>::from_data(TensorData::new(values, [n, d]), &inner);
            let mut e = m.forward_flat(x, &data.sample_shape).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data");
            if offsets.len() == 1 {
                sum = e;
                break;
            }
            if normalize {
                let dim = e.len() / n;
                l2_normalize_rows(&mut e, dim);
            }
            if sum.is_empty() {
                sum = e;
            } else {
                sum.iter_mut().zip(&e).for_each(|(s, v)| *s += v);
            }
        }
        if offsets.len() > 1 && !normalize {
            let k = offsets.len() as f32;
            sum.iter_mut().for_each(|s| *s /= k);
        }
        out.extend(sum);
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
