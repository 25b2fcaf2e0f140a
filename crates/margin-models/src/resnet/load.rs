//! Loading a torchvision `state_dict` into a [`ResNet`]: `.pth` (torch's zip/pickle, as
//! torchvision downloads them, read by burn-store's PyTorch reader, which needs no Python)
//! or `.safetensors`, by torchvision's key names.
//!
//! Like the BERT loader (`text::weights`), the mapping is ours rather than burn-store's
//! remapping and adapters, so that each refusal names the file and the key as torchvision
//! spells it: a file of another architecture first (`resnet50` weights for a `resnet18`),
//! then every missing key, every unexpected one, then a shape (both shapes), dtype or
//! non-finite value. `fc.*` (the ImageNet classifier) and `num_batches_tracked` are known
//! and skipped. A checkpoint that nests the state_dict (`state_dict.conv1.weight`,
//! `module.conv1.weight` from DataParallel) is read below its prefix, found as the key of
//! the stem's `[64, 3, 7, 7]` convolution. Floats of any width become f32. The reader runs
//! behind `catch_unwind` ([`margin_data::limits::guarded`]): a panic in it is an error
//! naming the file.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::store::ModuleStore;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::{DType, Device, Tensor, TensorData};
use margin_data::ResnetDepth;

use super::error::ResnetError;
use super::keys::{BN_SUFFIXES, Slot, detect, expected_keys, for_each_slot, is_unused_part};
use super::net::{ResNet, ResNetConfig};

/// A host tensor: shape and f32 values (row-major).
pub type HostTensor = (Vec<usize>, Vec<f32>);

fn read_err(path: &Path, reason: impl ToString) -> ResnetError {
    ResnetError::Read { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Every tensor of a `.pth`/`.pt`/`.bin` or `.safetensors` file, by key.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, PackTensor>, ResnetError> {
    if !path.is_file() {
        return Err(read_err(path, "no such file"));
    }
    let what = path.display().to_string();
    let read = || -> Result<BTreeMap<String, PackTensor>, margin_data::DataError> {
        let fmt = |e: &dyn std::fmt::Display| margin_data::DataError::Format { path: what.clone(), reason: format!("not a readable state_dict: {e}") };
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => burn::store::SafetensorsStore::from_file(path).get_all_tensors().map(|t| t.clone()).map_err(|e| fmt(&e)),
            Some("pth" | "pt" | "bin") => burn::store::PytorchStore::from_file(path).get_all_tensors().map(|t| t.clone()).map_err(|e| fmt(&e)),
            _ => Err(margin_data::DataError::Format {
                path: what.clone(),
                reason: "unknown weights format: expected a torchvision state_dict as .pth (torch.save) or .safetensors".into(),
            }),
        }
    };
    margin_data::limits::guarded(&what, read).map_err(|e| match e {
        margin_data::DataError::Format { reason, .. } => read_err(path, reason),
        other => read_err(path, other),
    })
}

/// Strips the prefix under which a checkpoint nests the state_dict (see the module docs).
fn strip_prefix(tensors: BTreeMap<String, PackTensor>) -> BTreeMap<String, PackTensor> {
    let stem = tensors.iter().find(|(k, t)| k.ends_with("conv1.weight") && t.shape.as_slice() == [64, 3, 7, 7]).map(|(k, _)| k.clone());
    let Some(prefix) = stem.and_then(|k| k.strip_suffix("conv1.weight").map(str::to_string)).filter(|p| !p.is_empty()) else {
        return tensors;
    };
    tensors.into_iter().map(|(k, t)| (k.strip_prefix(&prefix).map(str::to_string).unwrap_or(k), t)).collect()
}

/// The f32 values of `t` (any float dtype), refusing other dtypes and non-finite values.
fn to_f32(t: &PackTensor, key: &str, arch: &str, path: &Path) -> Result<Vec<f32>, ResnetError> {
    let bad = |found: String, expected: &str| ResnetError::Tensor { path: path.to_path_buf(), key: key.to_string(), arch: arch.to_string(), found, expected: expected.to_string() };
    if !matches!(t.dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
        return Err(bad(format!("dtype {:?}", t.dtype), "a float dtype (F32, F16, BF16 or F64)"));
    }
    let bytes = t.to_bytes().map_err(|e| read_err(path, format!("tensor `{key}`: {e}")))?;
    let data = TensorData::from_bytes(bytes, t.shape.clone(), t.dtype)
        .try_cast(DType::F32)
        .and_then(|d| d.try_into_vec::<f32>())
        .map_err(|e| read_err(path, format!("tensor `{key}`: {e:?}")))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!("the non-finite value {} at flat index {i}", data[i]), "finite values"));
    }
    Ok(data)
}

/// Checks `tensors` against `net`'s keys and returns the host copies, by key.
fn check(net: &mut ResNet, tensors: BTreeMap<String, PackTensor>, path: &Path) -> Result<BTreeMap<String, HostTensor>, ResnetError> {
    let arch = net.depth().name();
    let tensors = strip_prefix(tensors);
    match detect(&tensors) {
        Some(found) if found != arch => return Err(ResnetError::OtherArchitecture { path: path.to_path_buf(), found, expected: arch }),
        None if !tensors.contains_key("conv1.weight") => {
            let first: Vec<String> = tensors.keys().take(5).cloned().collect();
            return Err(read_err(path, format!("not a torchvision ResNet state_dict: no `conv1.weight` or `layer1.0.conv1.weight` (its keys begin {first:?})")));
        }
        _ => {}
    }
    let expected = expected_keys(net);
    let missing: Vec<String> = expected.iter().filter(|(k, _)| !tensors.contains_key(k)).map(|(k, _)| k.clone()).collect();
    if !missing.is_empty() {
        return Err(ResnetError::MissingKeys { path: path.to_path_buf(), arch, n: missing.len(), keys: missing.into_iter().take(10).collect() });
    }
    let wanted: HashSet<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    let unexpected: Vec<String> = tensors.keys().filter(|k| !wanted.contains(k.as_str()) && !is_unused_part(k)).cloned().collect();
    if !unexpected.is_empty() {
        return Err(ResnetError::UnexpectedKeys { path: path.to_path_buf(), arch, n: unexpected.len(), keys: unexpected.into_iter().take(10).collect() });
    }
    let mut host = BTreeMap::new();
    for (key, shape) in expected {
        let t = &tensors[&key];
        if t.shape.as_slice() != shape.as_slice() {
            return Err(ResnetError::Tensor { path: path.to_path_buf(), key, arch, found: format!("shape {:?}", t.shape.as_slice()), expected: format!("shape {shape:?}") });
        }
        let data = to_f32(t, &key, &arch, path)?;
        host.insert(key, (shape, data));
    }
    Ok(host)
}

fn param<const D: usize>(host: &mut BTreeMap<String, HostTensor>, key: &str, device: &Device) -> Tensor<D> {
    let (shape, data) = host.remove(key).unwrap_or_else(|| panic!("`{key}` was checked present"));
    let dims: [usize; D] = shape.try_into().expect("rank checked against expected_keys");
    Tensor::from_data(TensorData::new(data, dims), device)
}

/// Overwrites every parameter and running statistic of `net` from checked host tensors.
fn assign(net: &mut ResNet, mut host: BTreeMap<String, HostTensor>, device: &Device) {
    for_each_slot(net, &mut |p, slot| match slot {
        Slot::Conv(c) => c.weight = Param::from_tensor(param(&mut host, &format!("{p}.weight"), device)),
        Slot::Bn(b) => {
            b.gamma = Param::from_tensor(param(&mut host, &format!("{p}.weight"), device));
            b.beta = Param::from_tensor(param(&mut host, &format!("{p}.bias"), device));
            b.running_mean = RunningState::new(param(&mut host, &format!("{p}.running_mean"), device));
            b.running_var = RunningState::new(param(&mut host, &format!("{p}.running_var"), device));
        }
    });
}

impl ResNet {
    /// Loads a torchvision `state_dict` file (`.pth` or `.safetensors`) of architecture
    /// `depth` (see the module docs for what is checked).
    pub fn from_file(depth: ResnetDepth, path: &Path, device: &Device) -> Result<ResNet, ResnetError> {
        Self::from_tensors(depth, read_tensors(path)?, path, device)
    }

    /// Builds the backbone from named tensors (as [`read_tensors`] returns them); `path`
    /// names their source in errors.
    pub fn from_tensors(depth: ResnetDepth, tensors: BTreeMap<String, PackTensor>, path: &Path, device: &Device) -> Result<ResNet, ResnetError> {
        let mut net = ResNetConfig::new(depth).init(device);
        let host = check(&mut net, tensors, path)?;
        assign(&mut net, host, device);
        Ok(net)
    }

    /// The backbone's tensors by torchvision key (what [`ResNet::from_tensors`] reads back;
    /// no `fc`, no `num_batches_tracked`).
    pub fn state_dict(&mut self) -> BTreeMap<String, HostTensor> {
        let mut out = BTreeMap::new();
        let host = |t: Tensor<1>| -> HostTensor { (t.dims().to_vec(), t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32")) };
        for_each_slot(self, &mut |p, slot| match slot {
            Slot::Conv(c) => {
                let w = c.weight.val();
                let dims = w.dims().to_vec();
                out.insert(format!("{p}.weight"), (dims, w.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32")));
            }
            Slot::Bn(b) => {
                let vals = [b.gamma.val(), b.beta.val(), b.running_mean.value_sync(), b.running_var.value_sync()];
                for (s, v) in BN_SUFFIXES.iter().zip(vals) {
                    out.insert(format!("{p}.{s}"), host(v));
                }
            }
        });
        out
    }
}
