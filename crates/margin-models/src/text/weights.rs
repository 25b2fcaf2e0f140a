//! Loading a Hugging Face BERT checkpoint (`model.safetensors`, or a PyTorch
//! `pytorch_model.bin`) into [`BertModel`] by the checkpoint's own key names.
//!
//! burn-store reads both formats into named tensors; the mapping onto the module is done
//! here, by hand, rather than by burn-store's key remapping and adapters, so that every
//! refusal names the tensor as the checkpoint spells it: all missing keys at once, every
//! unexpected one, a shape or dtype mismatch with both shapes. Keys may carry the `bert.`
//! prefix of `BertFor…` checkpoints; the pooler (`pooler.dense.*`), the `position_ids`
//! buffer and, under a prefix, the task heads (`cls.*`) are known parts that a sentence
//! encoder does not use, and are skipped. LayerNorm parameters of old conversions
//! (`gamma`/`beta`) are read as `weight`/`bias`, as transformers does. PyTorch's `Linear`
//! stores `[out, in]`; Burn's `[in, out]`: linear weights are transposed once, on the host.
//! Values are converted to f32 whatever the file's float type, and must be finite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::store::ModuleStore;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::attention::SelfAttention;
use super::bert::{BertEmbeddings, BertLayer, BertModel};
use super::config::BertConfig;
use super::error::TextError;

/// Reads every tensor of a checkpoint: `.safetensors`, or PyTorch's `.bin` / `.pt` / `.pth`.
pub fn read_checkpoint(path: &Path) -> Result<BTreeMap<String, PackTensor>, TextError> {
    let err = |e: &dyn std::fmt::Display| TextError::Weights { path: path.to_path_buf(), reason: format!("cannot read the tensors: {e}") };
    if !path.is_file() {
        return Err(TextError::Weights { path: path.to_path_buf(), reason: "no such file".into() });
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => {
            let mut store = burn::store::SafetensorsStore::from_file(path);
            store.get_all_tensors().map(|t| t.clone()).map_err(|e| err(&e))
        }
        Some("bin" | "pt" | "pth") => {
            let mut store = burn::store::PytorchStore::from_file(path);
            store.get_all_tensors().map(|t| t.clone()).map_err(|e| err(&e))
        }
        _ => Err(TextError::Weights {
            path: path.to_path_buf(),
            reason: "unknown weight format (expected model.safetensors or a PyTorch pytorch_model.bin)".into(),
        }),
    }
}

/// How a tensor is stored in the checkpoint and used by the module.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// As stored.
    Plain,
    /// A PyTorch `Linear` weight, `[out, in]`, transposed to Burn's `[in, out]`.
    LinearWeight,
}

/// The tensors a configuration needs: (key without prefix, shape as stored, layout).
fn expected_keys(c: &BertConfig) -> Vec<(String, Vec<usize>, Layout)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut keys = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![c.vocab_size, h], Layout::Plain),
        ("embeddings.position_embeddings.weight".to_string(), vec![c.max_position_embeddings, h], Layout::Plain),
        ("embeddings.token_type_embeddings.weight".to_string(), vec![c.type_vocab_size, h], Layout::Plain),
        ("embeddings.LayerNorm.weight".to_string(), vec![h], Layout::Plain),
        ("embeddings.LayerNorm.bias".to_string(), vec![h], Layout::Plain),
    ];
    for n in 0..c.num_hidden_layers {
        let mut linear = |name: &str, out: usize, inp: usize| {
            keys.push((format!("encoder.layer.{n}.{name}.weight"), vec![out, inp], Layout::LinearWeight));
            keys.push((format!("encoder.layer.{n}.{name}.bias"), vec![out], Layout::Plain));
        };
        linear("attention.self.query", h, h);
        linear("attention.self.key", h, h);
        linear("attention.self.value", h, h);
        linear("attention.output.dense", h, h);
        linear("intermediate.dense", i, h);
        linear("output.dense", h, i);
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            keys.push((format!("encoder.layer.{n}.{norm}.weight"), vec![h], Layout::Plain));
            keys.push((format!("encoder.layer.{n}.{norm}.bias"), vec![h], Layout::Plain));
        }
    }
    keys
}

/// Known checkpoint parts a sentence encoder does not use (key without prefix).
fn is_unused_part(key: &str, prefixed: bool) -> bool {
    key == "embeddings.position_ids" || key.starts_with("pooler.") || (prefixed && key.starts_with("cls."))
}

/// `…LayerNorm.gamma` / `…LayerNorm.beta` (old conversions) as `weight` / `bias`.
fn canonical(key: &str) -> String {
    if let Some(stem) = key.strip_suffix("LayerNorm.gamma") {
        format!("{stem}LayerNorm.weight")
    } else if let Some(stem) = key.strip_suffix("LayerNorm.beta") {
        format!("{stem}LayerNorm.bias")
    } else {
        key.to_string()
    }
}

/// Checked host copies of the expected tensors, by key without prefix (f32, module layout).
struct Host {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

fn check(config: &BertConfig, tensors: BTreeMap<String, PackTensor>, path: &Path) -> Result<Host, TextError> {
    let prefixed = tensors.keys().any(|k| k.starts_with("bert."));
    // canonical key without prefix → (key as the file spells it, tensor)
    let mut by_key: BTreeMap<String, (String, PackTensor)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (file_key, t) in tensors {
        let bare = if prefixed { file_key.strip_prefix("bert.") } else { Some(file_key.as_str()) };
        match bare {
            Some(k) => {
                by_key.insert(canonical(k), (file_key.clone(), t));
            }
            None if file_key.starts_with("cls.") => {}
            None => unexpected.push(file_key),
        }
    }
    let expected = expected_keys(config);
    let spell = |k: &str| if prefixed { format!("bert.{k}") } else { k.to_string() };
    let missing: Vec<String> = expected.iter().filter(|(k, ..)| !by_key.contains_key(k)).map(|(k, ..)| spell(k)).collect();
    if !missing.is_empty() {
        return Err(TextError::MissingKeys { path: path.to_path_buf(), keys: missing });
    }
    let wanted: std::collections::HashSet<&str> = expected.iter().map(|(k, ..)| k.as_str()).collect();
    unexpected.extend(by_key.iter().filter(|(k, _)| !wanted.contains(k.as_str()) && !is_unused_part(k, prefixed)).map(|(_, (f, _))| f.clone()));
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(TextError::UnexpectedKeys { path: path.to_path_buf(), keys: unexpected });
    }
    let mut host = BTreeMap::new();
    for (key, shape, layout) in expected {
        let (file_key, t) = by_key.remove(&key).expect("checked above");
        let bad = |found: String, expected: String| TextError::Tensor { path: path.to_path_buf(), key: file_key.clone(), found, expected };
        if !matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
            return Err(bad(format!("dtype {:?}", t.dtype), "a float dtype (F32, F16, BF16 or F64)".into()));
        }
        if t.shape.as_slice() != shape.as_slice() {
            return Err(bad(format!("shape {:?}", t.shape.as_slice()), format!("shape {shape:?}")));
        }
        let bytes = t.to_bytes().map_err(|e| TextError::Weights { path: path.to_path_buf(), reason: format!("tensor `{file_key}`: {e}") })?;
        let data = TensorData::from_bytes(bytes, t.shape.clone(), t.dtype)
            .try_cast(DType::F32)
            .and_then(|d| d.try_into_vec::<f32>())
            .map_err(|e| TextError::Weights { path: path.to_path_buf(), reason: format!("tensor `{file_key}`: {e:?}") })?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!("the non-finite value {} at flat index {i}", data[i]), "finite values".into()));
        }
        let (shape, data) = match layout {
            Layout::Plain => (shape, data),
            Layout::LinearWeight => {
                let (out, inp) = (shape[0], shape[1]);
                let mut t = vec![0f32; data.len()];
                for o in 0..out {
                    for i in 0..inp {
                        t[i * out + o] = data[o * inp + i];
                    }
                }
                (vec![inp, out], t)
            }
        };
        host.insert(key, (shape, data));
    }
    Ok(Host { tensors: host })
}

impl Host {
    fn take<const D: usize>(&mut self, key: &str, dtype: DType, device: &Device) -> Param<Tensor<D>> {
        let (shape, data) = self.tensors.remove(key).unwrap_or_else(|| panic!("{key} was checked present"));
        let dims: [usize; D] = shape.try_into().expect("rank checked against expected_keys");
        Param::from_tensor(Tensor::from_data(TensorData::new(data, dims).convert_dtype(dtype), device))
    }

    fn linear(&mut self, key: &str, dtype: DType, device: &Device) -> Linear {
        Linear { weight: self.take(&format!("{key}.weight"), dtype, device), bias: Some(self.take(&format!("{key}.bias"), dtype, device)) }
    }

    fn norm(&mut self, key: &str, config: &BertConfig, dtype: DType, device: &Device) -> LayerNorm {
        let mut n = LayerNormConfig::new(config.hidden_size).with_epsilon(config.layer_norm_eps).init(device);
        n.gamma = self.take(&format!("{key}.weight"), dtype, device);
        n.beta = Some(self.take(&format!("{key}.bias"), dtype, device));
        n
    }
}

impl BertModel {
    /// Loads a Hugging Face BERT checkpoint (`model.safetensors` or `pytorch_model.bin`) of
    /// the architecture in `config` (f32 parameters).
    pub fn from_pretrained(config: &BertConfig, path: &Path, device: &Device) -> Result<Self, TextError> {
        Self::from_tensors(config, read_checkpoint(path)?, path, DType::F32, device)
    }

    /// Builds the model from named checkpoint tensors (as [`read_checkpoint`] returns them),
    /// every key checked; parameters of `dtype`. `path` names the source in errors.
    pub fn from_tensors(config: &BertConfig, tensors: BTreeMap<String, PackTensor>, path: &Path, dtype: DType, device: &Device) -> Result<Self, TextError> {
        let mut host = check(config, tensors, path)?;
        let emb = |host: &mut Host, key: &str| Embedding { weight: host.take(&format!("embeddings.{key}.weight"), dtype, device) };
        let embeddings = BertEmbeddings {
            word: emb(&mut host, "word_embeddings"),
            position: emb(&mut host, "position_embeddings"),
            token_type: emb(&mut host, "token_type_embeddings"),
            layer_norm: host.norm("embeddings.LayerNorm", config, dtype, device),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let p = format!("encoder.layer.{n}");
                BertLayer {
                    attention: SelfAttention {
                        query: host.linear(&format!("{p}.attention.self.query"), dtype, device),
                        key: host.linear(&format!("{p}.attention.self.key"), dtype, device),
                        value: host.linear(&format!("{p}.attention.self.value"), dtype, device),
                        output: host.linear(&format!("{p}.attention.output.dense"), dtype, device),
                        layer_norm: host.norm(&format!("{p}.attention.output.LayerNorm"), config, dtype, device),
                        heads: config.num_attention_heads,
                    },
                    intermediate: host.linear(&format!("{p}.intermediate.dense"), dtype, device),
                    output: host.linear(&format!("{p}.output.dense"), dtype, device),
                    layer_norm: host.norm(&format!("{p}.output.LayerNorm"), config, dtype, device),
                }
            })
            .collect();
        Ok(BertModel { embeddings, layers })
    }
}

/// The file names a sentence-transformers Transformer module may hold its weights in, in
/// the order they are preferred.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// The weight file of a Transformer module's folder, or an error listing what was looked for.
pub fn find_weights(folder: &Path) -> Result<PathBuf, TextError> {
    WEIGHT_FILES.iter().map(|f| folder.join(f)).find(|p| p.is_file()).ok_or_else(|| TextError::Weights {
        path: folder.to_path_buf(),
        reason: format!("no weight file (looked for {})", WEIGHT_FILES.join(", ")),
    })
}
