//! `margin embed --backbone resnet18|resnet34|resnet50 --weights FILE --input X.npy --out F.npy`:
//! the globally pooled features of a pretrained torchvision ResNet (the input of its `fc`),
//! raw — how people extract features from a pretrained model without training.
//!
//! `X` is an already preprocessed float32 (or float64) array `[N, 3, H, W]` (torchvision's
//! layout, normalised as the weights expect); integer arrays are refused, as they are pixels
//! that were not preprocessed. The whole input is read once; the network runs on chunks of at
//! most [`MAX_CHUNK`] images (a ResNet's activations at 224×224 are ~10-15 MB an image), and
//! the output `[N, 512 | 2048]` is checked finite and written atomically.

use std::path::Path;

use anyhow::{Context, bail};
use margin::burn::tensor::{Tensor, TensorData};
use margin_data::{ResnetDepth, limits, npy};
use margin_models::resnet::ResNet;

/// Most images per forward pass (`--batch` lowers it).
pub const MAX_CHUNK: usize = 32;

/// The images of `path`, checked: `(values, [N, 3, H, W])`.
fn read_images(path: &Path) -> anyhow::Result<(Vec<f32>, [usize; 4])> {
    let arr = npy::read_npy(path)?;
    let s = arr.header.shape.clone();
    let dims: [usize; 4] = match s.as_slice() {
        [n, 3, h, w] => [*n, 3, *h, *w],
        _ => bail!("{}: shape {s:?}, but --backbone takes preprocessed RGB images [N, 3, H, W] (NCHW, as torchvision)", path.display()),
    };
    if matches!(arr.data, npy::NpyData::Int(_)) {
        bail!(
            "{}: integer values ({:?}): --backbone takes preprocessed float images (scaled to [0, 1] and normalised with the mean/std the weights were trained with)",
            path.display(),
            arr.header.dtype
        );
    }
    if dims[2] < 32 || dims[3] < 32 {
        bail!("{}: images of {}×{} are too small for a ResNet (at least 32×32: it downsamples 32×)", path.display(), dims[3], dims[2]);
    }
    limits::check_image_size(dims[3], dims[2], &path.display().to_string())?;
    let values = arr.to_f32();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let per = 3 * dims[2] * dims[3];
        bail!("{}: image {} holds the non-finite value {} (flat index {i}); nothing written", path.display(), i / per, values[i]);
    }
    Ok((values, dims))
}

/// Runs the backbone form of `margin embed`.
pub fn run(depth: ResnetDepth, weights: Option<&Path>, input: &Path, out: &Path, batch: usize, device: margin_train::DeviceSpec) -> anyhow::Result<()> {
    let Some(weights) = weights else {
        bail!("--backbone {} needs --weights FILE (a torchvision state_dict, .pth or .safetensors; margin downloads nothing)", depth.name());
    };
    let device = device.device()?;
    let (values, [n, c, h, w]) = read_images(input)?;
    let net = ResNet::from_file(depth, weights, &device).with_context(|| format!("loading --weights for --backbone {}", depth.name()))?;
    let dim = depth.feature_dim();
    let chunk = batch.clamp(1, MAX_CHUNK);
    let per = c * h * w;
    let mut feats = Vec::with_capacity(n * dim);
    for start in (0..n).step_by(chunk) {
        let m = chunk.min(n - start);
        let x = Tensor::<4>::from_data(TensorData::new(values[start * per..(start + m) * per].to_vec(), [m, c, h, w]), &device);
        feats.extend(net.forward_features(x).into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
    }
    if let Some(fault) = margin_linalg::rows::first_bad_row(&feats, dim) {
        bail!("{}: the features are not finite ({fault:?}) although the input and weights are: the values overflow inside the network; check the input's preprocessing; nothing written", input.display());
    }
    npy::write_npy_f32(out, &[n, dim], &feats).with_context(|| format!("writing {}", out.display()))?;
    println!("embedded {n} images with {} → {} ({n} × {dim}, raw pooled features)", depth.name(), out.display());
    Ok(())
}
