//! `margin embed`: embed new data with a model trained by `margin train`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use margin_data::{self as data, Dataset, ModelCard, npy};

/// Arguments of `margin embed`.
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// A run folder of `margin train` (holds model.safetensors and model.json).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Input: .npy (rows × features, or N × H × W / N × C × H × W images), .npz (x/y),
    /// .csv[.gz] (label column + features), or an image folder / zip `root/<class>/*.png`.
    #[arg(long, value_name = "PATH")]
    pub input: PathBuf,
    /// Output embeddings (.npy, f32, rows × dim), written atomically.
    #[arg(long, value_name = "E.npy")]
    pub out: PathBuf,
    /// Also write the input's labels (when it has any) to this .npy (int64).
    #[arg(long, value_name = "L.npy")]
    pub labels_out: Option<PathBuf>,
    /// Label column of a CSV input (negative: from the end).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub label_column: i64,
    /// Divide CSV/feature values by this (use what the training config used).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Invert grey levels of image-folder inputs (ink = 1 − grey).
    #[arg(long)]
    pub invert: bool,
    /// Do not L2-normalise the embeddings.
    #[arg(long)]
    pub raw: bool,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 1024)]
    pub batch: usize,
}

/// Runs `margin embed`.
pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let card_path = a.model.join("model.json");
    let card = ModelCard::read(&card_path).with_context(|| format!("is {} a run folder of `margin train`?", a.model.display()))?;
    let device = margin::burn::tensor::Device::flex();
    let weights = a.model.join("model.safetensors");
    let model = margin_models::weights::load_safetensors(&card, &weights, &device).with_context(|| format!("loading {}", weights.display()))?;
    let shape = card.sample_shape.clone();
    let p = &a.input;
    let name = p.to_string_lossy().to_lowercase();
    let mut ds: Dataset = if p.is_dir() || name.ends_with(".zip") {
        if shape.len() != 3 {
            bail!("{} is an image folder but the model takes feature vectors of shape {shape:?}", p.display());
        }
        data::load_image_folder(p, shape[1], a.invert)?.0
    } else if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        data::load_csv(p, a.label_column)?
    } else if name.ends_with(".npz") {
        data::load_features(p, None)?
    } else if name.ends_with(".npy") {
        let arr = npy::read_npy(p)?;
        let s = &arr.header.shape;
        let n = *s.first().unwrap_or(&0);
        let per: usize = s.iter().skip(1).product();
        let want: usize = shape.iter().product();
        let mut feats = arr.values;
        if per != want {
            // Images of another size: area-resize to the model's input.
            let (h, w) = match s.len() {
                3 => (s[1], s[2]),
                4 if s[1] == 1 => (s[2], s[3]),
                _ => bail!("{}: shape {s:?} does not fit the model input {shape:?}", p.display()),
            };
            if shape.len() != 3 || shape[0] != 1 {
                bail!("{}: shape {s:?} does not fit the model input {shape:?}", p.display());
            }
            let mut out = vec![0f32; n * want];
            for i in 0..n {
                data::area_resize(&feats[i * h * w..(i + 1) * h * w], h, w, &mut out[i * want..(i + 1) * want], shape[1], shape[2]);
            }
            feats = out;
        }
        Dataset::new(p.display().to_string(), feats, shape.clone(), vec![0; n])?
    } else {
        bail!("{}: unknown input type (expected .npy, .npz, .csv, .csv.gz, a .zip or a folder)", p.display());
    };
    if a.scale != 1.0 {
        let s = (1.0 / a.scale) as f32;
        ds.features.iter_mut().for_each(|v| *v *= s);
    }
    if ds.sample_shape != shape {
        bail!("{}: samples have shape {:?} but the model takes {shape:?}", p.display(), ds.sample_shape);
    }
    let emb = margin_models::embed(&model, &ds, a.batch.max(1), !a.raw, &device);
    let dim = card.model.embedding_dim();
    npy::write_npy_f32(&a.out, &[ds.len(), dim], &emb).with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(l) = &a.labels_out {
        npy::write_npy_i64(l, &[ds.labels.len()], &ds.labels).with_context(|| format!("writing {}", l.display()))?;
    }
    println!("embedded {} samples → {} ({} × {dim})", ds.len(), a.out.display(), ds.len());
    Ok(())
}
