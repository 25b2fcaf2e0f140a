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
    let (first, rest) = offsets.split_first().expect("every TestTimeAugment has the identity view");
    let mut out = Vec::new();
    for start in (0..data.len()).step_by(batch.max(1)) {
        let n = batch.min(data.len() - start);
        let rows = &data.features[start * d..(start + n) * d];
        let view = |&(dx, dy): &(isize, isize)| {
            let x = Tensor::<2>::from_data(TensorData::new(shifted_rows(rows, &data.sample_shape, dx, dy), [n, d]), &inner);
            m.forward_flat(x, &data.sample_shape).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 data")
        };
        let mut sum = view(first);
        if !rest.is_empty() {
            let dim = sum.len() / n;
            if normalize {
                l2_normalize_rows(&mut sum, dim);
            }
            for o in rest {
                let mut e = view(o);
                if normalize {
                    l2_normalize_rows(&mut e, dim);
                }
                sum.iter_mut().zip(&e).for_each(|(s, v)| *s += v);
            }
            if !normalize {
                let k = offsets.len() as f32;
                sum.iter_mut().for_each(|s| *s /= k);
            }
        }
        out.extend(sum);
    }
    if normalize {
        let dim = out.len() / data.len().max(1);
        l2_normalize_rows(&mut out, dim);
    }
    out
}

/// A copy of `rows` (samples of `shape`) with every sample shifted by `(dx, dy)` pixels
/// (`margin_data::tta::shift_image`); the identity view is `rows` itself.
fn shifted_rows(rows: &[f32], shape: &[usize], dx: isize, dy: isize) -> Vec<f32> {
    if (dx, dy) == (0, 0) {
        return rows.to_vec();
    }
    let [c, h, w] = shape[..] else { panic!("shifted views of samples of shape {shape:?} (TestTimeAugment::validate refuses them)") };
    let mut out = vec![0.0; rows.len()];
    for (src, dst) in rows.chunks(c * h * w).zip(out.chunks_mut(c * h * w)) {
        margin_data::tta::shift_image(src, c, h, w, dx, dy, dst);
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
