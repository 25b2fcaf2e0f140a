//! `margin.Model`: a model trained by `margin train` (a run folder: `model.json` card +
//! `model.safetensors`) or a sentence-transformers folder (`modules.json`), and `embed` of
//! numpy arrays, image paths or texts with the card's preprocessing — what `margin embed`
//! does for `.npy`, image and text inputs, so the same input gives the CLI's embeddings.
//!
//! Design: the model lives behind a `Mutex` (Burn modules are `Send`, not `Sync`), and the
//! GIL is released while it computes. A model pickles by its folder's path (`__reduce__` →
//! `Model.load(path)`): a worker that can read the same path (a shared file system, Ray's
//! working dir) rebuilds it; the weights are not copied into the pickle.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use margin::burn::tensor::Device;
use margin_data::array_samples::{GreyLevels, prepare_array};
use margin_data::card::Preprocessing;
use margin_data::image_folder::Prep;
use margin_data::{Dataset, ModelCard};
use margin_models::EmbeddingNet;
use margin_models::text::SentenceEncoder;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// Samples per forward pass by default (`margin embed`'s: 1024, 64 for texts).
const BATCH: usize = 1024;
const TEXT_BATCH: usize = 64;

enum Kind {
    Run { card: ModelCard, prep: Preprocessing, net: EmbeddingNet },
    Text(SentenceEncoder),
}

/// A trained model: ``Model.load(run_dir).embed(x)``. Pickles by its folder's path.
#[pyclass(name = "Model", module = "margin._margin")]
pub struct PyModel {
    path: PathBuf,
    kind: Mutex<Kind>,
}

/// The card's preprocessing; for a card written before margin recorded it, `margin embed`'s
/// defaults (no inversion, scale 1).
fn preprocessing(card: &ModelCard) -> PyResult<Preprocessing> {
    if let Some(p) = card.preprocessing {
        return Ok(p);
    }
    match card.sample_shape.as_slice() {
        [1, h, w] if h == w => Ok(Preprocessing::GreyImage { size: *h, invert: false }),
        [d] => Ok(Preprocessing::Features { dim: *d, scale: 1.0 }),
        s => Err(PyValueError::new_err(format!("the model takes samples of shape {s:?}, which margin cannot prepare"))),
    }
}

fn load_run(dir: &Path, device: &Device) -> PyResult<Kind> {
    let card_path = dir.join("model.json");
    let card = ModelCard::read(&card_path).map_err(|e| {
        let msg = format!("{e} (is {} a run folder of `margin train` (model.json) or a sentence-transformers folder (modules.json)?)", dir.display());
        match e {
            margin_data::DataError::Io { .. } => PyOSError::new_err(msg),
            _ => PyValueError::new_err(msg),
        }
    })?;
    let prep = preprocessing(&card)?;
    let weights = dir.join("model.safetensors");
    let net = margin_models::weights::load_safetensors(&card, &weights, device).map_err(|e| model_err(e, &weights))?;
    Ok(Kind::Run { card, prep, net })
}

fn model_err(e: margin_models::ModelError, path: &Path) -> PyErr {
    let msg = format!("loading {}: {e}", path.display());
    match e {
        margin_models::ModelError::Data(margin_data::DataError::Io { .. }) | margin_models::ModelError::Text(margin_models::text::TextError::Io { .. }) => PyOSError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

fn text_err(e: margin_models::text::TextError) -> PyErr {
    match e {
        margin_models::text::TextError::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// `x` as f32 values and its shape (any strides; a copy, since Burn owns its tensors).
/// Objects with `__array__` (torch CPU tensors) go through `numpy.asarray` first.
fn array_values(x: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, Vec<usize>)> {
    let converted;
    let x = if x.cast::<PyUntypedArray>().is_err() && x.hasattr("__array__")? {
        converted = x.py().import("numpy")?.call_method1("asarray", (x,))?;
        &converted
    } else {
        x
    };
    let a = x.cast::<PyUntypedArray>().map_err(|_| PyTypeError::new_err("x: expected a numpy array, a list of image paths, or (for a text model) a list of strings"))?;
    let shape = a.shape().to_vec();
    if let Ok(v) = x.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok((v.as_array().iter().copied().collect(), shape));
    }
    if let Ok(v) = x.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        return Ok((v.as_array().iter().map(|&f| f as f32).collect(), shape));
    }
    Err(PyTypeError::new_err(format!("x: expected float32 or float64 values, got dtype {}", a.dtype())))
}

/// An array prepared as the model's samples, as `margin embed` prepares an `.npy` input
/// (one function for both: [`margin_data::array_samples::prepare_array`]), feature rows then
/// divided by the card's scale.
fn array_samples(values: Vec<f32>, s: &[usize], prep: Preprocessing, shape: &[usize]) -> Result<Dataset, String> {
    let (feats, n) = prepare_array("x", values, s, GreyLevels::Unit, prep).map_err(|e| e.to_string())?;
    let mut ds = Dataset::new("x", feats, shape.to_vec(), vec![0; n]).map_err(|e| e.to_string())?;
    if let Preprocessing::Features { scale, .. } = prep {
        ds.divide_features(scale, "the model card's scale").map_err(|e| e.to_string())?;
    }
    Ok(ds)
}

/// Image files decoded and prepared as the card says (what `margin embed` does for an image
/// folder, file by file).
fn image_samples(paths: &[PathBuf], prep: Preprocessing, shape: &[usize]) -> PyResult<Dataset> {
    let ip = match prep {
        Preprocessing::GreyImage { size, invert } => Prep::Grey { size, invert },
        Preprocessing::Image(spec) => Prep::Spec(spec),
        Preprocessing::Features { .. } => {
            return Err(PyValueError::new_err(format!("x: a list of image paths, but the model takes feature vectors of shape {shape:?}")));
        }
    };
    let d: usize = shape.iter().product();
    let mut feats = vec![0f32; paths.len() * d];
    for (i, p) in paths.iter().enumerate() {
        let bytes = std::fs::read(p).map_err(|e| PyOSError::new_err(format!("{}: {e}", p.display())))?;
        ip.prepare(&bytes, &p.display().to_string(), &mut feats[i * d..(i + 1) * d]).map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Dataset::new("x", feats, shape.to_vec(), vec![0; paths.len()]).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn is_str_list(x: &Bound<'_, PyAny>) -> bool {
    x.is_instance_of::<PyList>() || x.is_instance_of::<PyTuple>()
}

#[pymethods]
impl PyModel {
    /// Loads a run folder of ``margin train`` (``model.json`` + ``model.safetensors``) or a
    /// sentence-transformers folder (``modules.json``). Raises ``OSError`` when the files
    /// cannot be read, ``ValueError`` when they are not a model.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let device = Device::flex();
        let kind = if path.join("modules.json").is_file() {
            let p = path.clone();
            Kind::Text(py.detach(|| SentenceEncoder::load(&p, &device)).map_err(|e| PyValueError::new_err(format!("loading the sentence-transformers folder {}: {e}", path.display())))?)
        } else {
            let p = path.clone();
            py.detach(|| load_run(&p, &device))?
        };
        Ok(Self { path, kind: Mutex::new(kind) })
    }

    /// The folder it was loaded from.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The embedding dimension.
    #[getter]
    fn dim(&self) -> usize {
        match &*self.kind.lock().expect("no panic holds the lock") {
            Kind::Run { card, .. } => card.model.embedding_dim(),
            Kind::Text(enc) => enc.dim(),
        }
    }

    /// Whether it embeds texts (a sentence-transformers folder).
    #[getter]
    fn is_text(&self) -> bool {
        matches!(&*self.kind.lock().expect("no panic holds the lock"), Kind::Text(_))
    }

    /// Embeddings ``[N, dim]`` float32 — what ``margin embed`` writes for the same input.
    ///
    /// ``x``: a float32/float64 array shaped like the card's samples (``[N, D]`` for a
    /// feature model, divided by the card's scale; ``[N, H, W]`` or ``[N, 1, H, W]`` grey
    /// levels in [0, 1] for a grey model, inverted and resized as the card says;
    /// ``[N, C, S, S]`` prepared pictures for a picture model), a list of image paths
    /// (decoded and prepared by the card), or, for a sentence-transformers folder, a list of
    /// strings. ``normalize``: L2-normalise (None: as the card says; ``False`` is
    /// ``margin embed --raw``); not for text models. ``batch``: samples per forward pass.
    /// Raises ``ValueError`` for a wrong shape or a non-finite input or output, ``OSError``
    /// for an unreadable file. The GIL is released while the model runs.
    #[pyo3(signature = (x, normalize=None, batch=None))]
    fn embed<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>, normalize: Option<bool>, batch: Option<usize>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        if batch == Some(0) {
            return Err(PyValueError::new_err("batch: must be at least 1"));
        }
        let guard = self.kind.lock().expect("no panic holds the lock");
        let (emb, dim) = match &*guard {
            Kind::Text(enc) => {
                if normalize.is_some() {
                    return Err(PyValueError::new_err("normalize does not apply to a text model: its modules.json decides pooling and normalisation"));
                }
                if !is_str_list(x) {
                    return Err(PyTypeError::new_err("x: a text model embeds a list of strings"));
                }
                let texts: Vec<String> = x.extract().map_err(|_| PyTypeError::new_err("x: a text model embeds a list of strings"))?;
                let b = batch.unwrap_or(TEXT_BATCH);
                let emb = py.detach(|| enc.encode(&texts, b)).map_err(text_err)?;
                let dim = enc.dim();
                if let Some(fault) = margin_linalg::rows::first_bad_row(&emb, dim) {
                    return Err(PyValueError::new_err(format!("x: the embeddings are not usable ({fault:?})")));
                }
                (emb, dim)
            }
            Kind::Run { card, prep, net } => {
                let shape = card.sample_shape.clone();
                let ds = if is_str_list(x) {
                    let paths: Vec<PathBuf> = x.extract().map_err(|_| PyTypeError::new_err("x: a list must hold image paths (str or os.PathLike)"))?;
                    py.detach(|| image_samples(&paths, *prep, &shape))?
                } else {
                    let (values, s) = array_values(x)?;
                    py.detach(|| array_samples(values, &s, *prep, &shape)).map_err(PyValueError::new_err)?
                };
                let norm = normalize.unwrap_or(card.normalize_output);
                let b = batch.unwrap_or(BATCH);
                let dim = card.model.embedding_dim();
                let device = Device::flex();
                let emb = py.detach(|| {
                    margin::check::size("batch", b, margin::check::MAX_BATCH).map_err(|e| e.to_string())?;
                    let emb = margin_models::embed_views(net, &ds, b, norm, card.tta, &device);
                    margin_models::check_embeddings(&emb, dim, &ds, net, &self.path.join("model.safetensors")).map_err(|e| e.to_string())?;
                    Ok::<_, String>(emb)
                })
                .map_err(PyValueError::new_err)?;
                (emb, dim)
            }
        };
        drop(guard);
        let n = emb.len() / dim.max(1);
        Ok(Array2::from_shape_vec((n, dim), emb).expect("n × dim embeddings").into_pyarray(py))
    }

    /// Pickles by path: unpickling calls ``Model.load(path)`` (the folder must be readable
    /// where it is unpickled).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (PathBuf,))> {
        Ok((py.get_type::<PyModel>().getattr("load")?, (self.path.clone(),)))
    }

    fn __repr__(&self) -> String {
        format!("margin.Model.load({:?})", self.path.display().to_string())
    }
}
