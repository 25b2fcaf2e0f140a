//! `margin embed`: embed new data with a model trained by `margin train`, or texts with a
//! sentence-transformers folder (`embed_text.rs`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use margin_data::card::Preprocessing;
use margin_data::{self as data, Dataset, ModelCard, npy};

/// Arguments of `margin embed`.
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// A run folder of `margin train` (holds model.safetensors and model.json), or a
    /// sentence-transformers folder (holds modules.json) to embed texts.
    #[arg(long, value_name = "DIR", required_unless_present = "backbone", conflicts_with = "backbone")]
    pub model: Option<PathBuf>,
    /// Instead of --model: a pretrained torchvision ResNet (resnet18, resnet34, resnet50),
    /// whose globally pooled features (the input of its `fc`) are written raw; with --weights.
    #[arg(long, value_name = "ARCH", requires = "weights")]
    pub backbone: Option<margin_data::ResnetDepth>,
    /// The --backbone's torchvision state_dict (.pth or .safetensors).
    #[arg(long, value_name = "FILE", requires = "backbone")]
    pub weights: Option<PathBuf>,
    /// Input: .npy (rows × features, or N × H × W / N × C × H × W images), .npz (x/y),
    /// .csv[.gz] (label column + features), or an image folder / zip `root/<class>/*.png`.
    #[arg(long, value_name = "PATH")]
    pub input: PathBuf,
    /// Output embeddings (.npy, f32, rows × dim), written atomically.
    #[arg(long, value_name = "E.npy")]
    pub out: PathBuf,
    /// Also write the input's labels (when it has any), as class names: a .txt (one name
    /// per line) or, for integer class names, an int64 .npy.
    #[arg(long, value_name = "L.txt|L.npy")]
    pub labels_out: Option<PathBuf>,
    /// Label column of a CSV input (negative: from the end).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub label_column: i64,
    /// Divide feature values by this. Only for models whose card records no preprocessing
    /// (run folders of earlier releases); otherwise the card's scale is applied, and a
    /// different value is refused.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::flags::positive)]
    pub scale: Option<f64>,
    /// Invert grey levels of images (ink = 1 − grey). Only for models whose card records no
    /// preprocessing; otherwise the card decides, and a contradicting flag is refused.
    #[arg(long)]
    pub invert: bool,
    /// Do not L2-normalise the embeddings.
    #[arg(long)]
    pub raw: bool,
    /// Samples per forward pass (default 1024; 64 for a text model).
    #[arg(long, value_parser = crate::flags::batch)]
    pub batch: Option<usize>,
    /// Text models: where the ids of the rows go (default: E.ids.txt beside E.npy).
    #[arg(long, value_name = "IDS.txt")]
    pub ids_out: Option<PathBuf>,
    /// Device to compute on: cpu (default), cuda[:N], wgpu[:N] or vulkan (GPU devices need a
    /// margin built with `--features cuda` or `--features wgpu`).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: margin_train::DeviceSpec,
}

/// The preprocessing to apply: the card's (flags must agree with it), or, for a card
/// written before preprocessing was recorded, the flags'.
fn preprocessing(a: &EmbedArgs, model: &std::path::Path, card: &ModelCard) -> anyhow::Result<Preprocessing> {
    let shape = &card.sample_shape;
    let Some(p) = card.preprocessing else {
        eprintln!(
            "warning: {} records no preprocessing (written before margin recorded it); using --invert {} --scale {}: \
             check they are what the training used",
            model.join("model.json").display(),
            a.invert,
            a.scale.unwrap_or(1.0)
        );
        return Ok(match shape.as_slice() {
            [1, h, w] if h == w => Preprocessing::GreyImage { size: *h, invert: a.invert },
            [d] => Preprocessing::Features { dim: *d, scale: a.scale.unwrap_or(1.0) },
            _ => bail!("the model takes samples of shape {shape:?}, which `margin embed` cannot prepare"),
        });
    };
    match p {
        Preprocessing::GreyImage { invert, .. } => {
            if a.scale.is_some() {
                bail!("--scale applies to feature vectors; this model takes images (its card: {p:?})");
            }
            if a.invert && !invert {
                bail!("--invert contradicts the model card: the model was trained on grey levels as they are (invert = false); drop --invert");
            }
        }
        Preprocessing::Image(_) => {
            if a.scale.is_some() || a.invert {
                bail!("--scale and --invert do not apply: this model's card records its picture preprocessing ({p:?}), which is applied");
            }
        }
        Preprocessing::Features { scale, .. } => {
            if a.invert {
                bail!("--invert applies to images; this model takes feature vectors (its card: {p:?})");
            }
            if let Some(s) = a.scale
                && s != scale
            {
                bail!("--scale {s} contradicts the model card: the model was trained with scale {scale}, which is applied; drop --scale");
            }
        }
    }
    Ok(p)
}

/// Embeddings of an input by a model: what `margin embed` writes, and what the search
/// commands' `--model RUN --input …` index, search, verify and deduplicate.
pub struct Embedded {
    /// The samples.
    pub ds: Dataset,
    /// `ds.len() × dim` embeddings.
    pub emb: Vec<f32>,
    /// The embedding dimension.
    pub dim: usize,
    /// The model card.
    pub card: ModelCard,
}

/// Runs `margin embed`.
pub fn run(a: EmbedArgs) -> anyhow::Result<()> {
    let Some(model_dir) = a.model.clone() else {
        let depth = a.backbone.expect("clap: --model or --backbone");
        return super::embed_backbone::run(depth, a.weights.as_deref(), &a.input, &a.out, a.batch.unwrap_or(32), a.device);
    };
    if super::embed_text::is_sentence_transformers(&model_dir) {
        return super::embed_text::run(&a, &model_dir);
    }
    if a.ids_out.is_some() {
        bail!("--ids-out is for text models (a sentence-transformers folder); {} is not one", model_dir.display());
    }
    let Embedded { ds, emb, dim, .. } = embed_input(&a)?;
    npy::write_npy_f32(&a.out, &[ds.len(), dim], &emb).with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(l) = &a.labels_out {
        data::label_file::write_labels(l, &ds).with_context(|| format!("writing {}", l.display()))?;
    }
    println!("embedded {} samples → {} ({} × {dim})", ds.len(), a.out.display(), ds.len());
    Ok(())
}

/// Loads the model of `a.model` (a run folder), prepares `a.input` by its card and embeds
/// it; refuses unusable embeddings ([`margin_models::check_embeddings`]: the model's
/// weights, the input sample or an overflow inside the network), writing nothing then.
pub fn embed_input(a: &EmbedArgs) -> anyhow::Result<Embedded> {
    let Some(model_dir) = a.model.clone() else { bail!("--model RUN is needed to embed with a trained model") };
    let card_path = model_dir.join("model.json");
    let card = ModelCard::read(&card_path)
        .with_context(|| format!("is {} a run folder of `margin train` (model.json) or a sentence-transformers folder (modules.json)?", model_dir.display()))?;
    let prep = preprocessing(a, &model_dir, &card)?;
    let device = a.device.device()?;
    let weights = model_dir.join("model.safetensors");
    let model = margin_models::weights::load_safetensors(&card, &weights, &device).with_context(|| format!("loading {}", weights.display()))?;
    let shape = card.sample_shape.clone();
    let p = &a.input;
    let name = p.to_string_lossy().to_lowercase();
    let scale_features = |mut ds: Dataset| -> anyhow::Result<Dataset> {
        if let Preprocessing::Features { scale, .. } = prep {
            ds.divide_features(scale, "--scale (or the model card's scale)")?;
        }
        Ok(ds)
    };
    // (dataset, whether its labels are real: an .npy input has none)
    let image_prep = match &prep {
        Preprocessing::GreyImage { size, invert } => Some(data::image_folder::Prep::Grey { size: *size, invert: *invert }),
        Preprocessing::Image(spec) => Some(data::image_folder::Prep::Spec(*spec)),
        Preprocessing::Features { .. } => None,
    };
    let is_manifest = name.ends_with(".jsonl") || (name.ends_with(".csv") && image_prep.is_some());
    let (ds, has_labels): (Dataset, bool) = if p.is_dir() || name.ends_with(".zip") || is_manifest {
        let Some(ip) = image_prep else {
            bail!("{} is an image folder, zip or manifest but the model takes feature vectors of shape {shape:?}", p.display());
        };
        if is_manifest {
            // Every row, whatever its split: embed what the manifest lists.
            let (d, t) = data::image_folder::load_manifest(p, &ip)?;
            (match t { Some(t) => d.concat(&t, p.display().to_string())?, None => d }, true)
        } else {
            (data::image_folder::load_images(p, &ip)?, true)
        }
    } else if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        (scale_features(data::load_csv(p, a.label_column)?)?, true)
    } else if name.ends_with(".npz") {
        (scale_features(data::load_features(p, None)?)?, true)
    } else if name.ends_with(".npy") {
        let (feats, n) = data::array_samples::read_npy_samples(p, prep)?;
        // Placeholder labels for the Dataset type only: never written (see --labels-out).
        (scale_features(Dataset::new(p.display().to_string(), feats, shape.clone(), vec![0; n])?)?, false)
    } else {
        bail!("{}: unknown input type (expected .npy, .npz, .csv, .csv.gz, a .zip or a folder)", p.display());
    };
    if a.labels_out.is_some() && !has_labels {
        bail!("--labels-out: {} is an .npy array, which has no labels (margin never invents them); give the labels of your own data", p.display());
    }
    if ds.sample_shape != shape {
        bail!("{}: samples have shape {:?} but the model takes {shape:?}", p.display(), ds.sample_shape);
    }
    let emb = margin_models::embed_views(&model, &ds, a.batch.unwrap_or(1024), !a.raw, card.tta, &device);
    let dim = card.model.embedding_dim();
    margin_models::check_embeddings(&emb, dim, &ds, &model, &weights).map_err(|e| anyhow::anyhow!("{e}; nothing written"))?;
    Ok(Embedded { ds, emb, dim, card })
}
