//! torchvision agreement of the ResNet port (`../shared/golden/resnet18`: a torchvision
//! resnet18 `state_dict` with random weights and randomised BatchNorm statistics, its
//! inputs, pooled features and logits, from `make_resnet_golden.py`), and the loader's
//! refusals. resnet34/50: the ignored test `deeper_resnets_match_torchvision` reads
//! `$MARGIN_RESNET_GOLDEN/{resnet34,resnet50}` made by the same script (too large to keep).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use margin_data::ResnetDepth;
use margin_models::resnet::{HostTensor, ResNet, ResnetError, read_tensors};

fn golden(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden").join(arch)
}

fn npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = margin_data::npy::read_npy(path).unwrap_or_else(|e| panic!("{e}"));
    (a.header.shape.clone(), a.to_f32())
}

fn features(net: &ResNet, input: &Path) -> (Vec<usize>, Vec<f32>) {
    let (shape, data) = npy(input);
    let x = Tensor::<4>::from_data(TensorData::new(data, [shape[0], shape[1], shape[2], shape[3]]), &Device::flex());
    let f = net.forward_features(x);
    (f.dims().to_vec(), f.into_data().try_into_vec::<f32>().unwrap())
}

/// Max |a − b| relative to max |b|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn assert_matches(net: &ResNet, dir: &Path) {
    for (input, expected) in [("inputs.npy", "features.npy"), ("inputs112.npy", "features112.npy")] {
        let (shape, ours) = features(net, &dir.join(input));
        let (gshape, gold) = npy(&dir.join(expected));
        assert_eq!(shape, gshape, "{expected}");
        let d = rel_diff(&ours, &gold);
        eprintln!("{}: {expected} max relative difference {d:e}", dir.display());
        assert!(d < 1e-4, "{expected}: max |ours − torchvision| / max |torchvision| = {d:e}");
    }
}

#[test]
fn resnet18_features_and_logits_match_torchvision() {
    let dir = golden("resnet18");
    let net = ResNet::from_file(ResnetDepth::R18, &dir.join("resnet18.pth"), &Device::flex()).unwrap();
    assert_matches(&net, &dir);
    // Logits: torchvision's fc on our features (the file's fc, read by the same reader).
    let t = read_tensors(&dir.join("resnet18.pth")).unwrap();
    let vals = |k: &str| t[k].to_bytes().unwrap().to_vec().chunks(4).map(|c| f32::from_ne_bytes(c.try_into().unwrap())).collect::<Vec<f32>>();
    let (w, b) = (vals("fc.weight"), vals("fc.bias"));
    let (_, f) = features(&net, &dir.join("inputs.npy"));
    let logits: Vec<f32> = (0..4).flat_map(|n| (0..1000).map(|o| b[o] + (0..512).map(|i| w[o * 512 + i] * f[n * 512 + i]).sum::<f32>()).collect::<Vec<_>>()).collect();
    let (_, gold) = npy(&dir.join("logits.npy"));
    assert!(rel_diff(&logits, &gold) < 1e-4);
}

/// A minimal safetensors writer (f32 only) for the tests: 8-byte header length, JSON header, data.
fn write_safetensors(path: &Path, tensors: &BTreeMap<String, HostTensor>) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (k, (shape, v)) in tensors {
        let start = data.len();
        data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        header.insert(k.clone(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}));
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("margin-resnet-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn safetensors_by_torchvision_keys_load_the_same_network() {
    let dir = golden("resnet18");
    let mut net = ResNet::from_file(ResnetDepth::R18, &dir.join("resnet18.pth"), &Device::flex()).unwrap();
    let sd = net.state_dict();
    assert_eq!(sd.len(), 20 + 20 * 4, "20 convolutions and 20 BatchNorms");
    let out = scratch("st");
    let file = out.join("resnet18.safetensors");
    write_safetensors(&file, &sd);
    let again = ResNet::from_file(ResnetDepth::R18, &file, &Device::flex()).unwrap();
    assert_matches(&again, &dir);
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn bad_weight_files_are_refused_naming_file_and_key() {
    let dir = golden("resnet18");
    let pth = dir.join("resnet18.pth");
    let dev = Device::flex();
    // Another architecture.
    let e = ResNet::from_file(ResnetDepth::R50, &pth, &dev).unwrap_err();
    assert!(matches!(e, ResnetError::OtherArchitecture { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("resnet18.pth") && msg.contains("holds the weights of resnet18, not resnet50"), "{msg}");
    let e = ResNet::from_file(ResnetDepth::R34, &pth, &dev).unwrap_err().to_string();
    assert!(e.contains("resnet18, not resnet34"), "{e}");
    // Missing, unexpected, mis-shaped keys, through safetensors files.
    let mut sd = ResNet::from_file(ResnetDepth::R18, &pth, &dev).unwrap().state_dict();
    let out = scratch("bad");
    let f = out.join("w.safetensors");
    let mut missing = sd.clone();
    missing.remove("layer3.1.bn2.running_var");
    write_safetensors(&f, &missing);
    let e = ResNet::from_file(ResnetDepth::R18, &f, &dev).unwrap_err().to_string();
    assert!(e.contains("w.safetensors") && e.contains("missing") && e.contains("`layer3.1.bn2.running_var`"), "{e}");
    let mut extra = sd.clone();
    extra.insert("layer4.1.se.weight".into(), (vec![2], vec![0.0, 1.0]));
    extra.insert("fc.weight".into(), (vec![2], vec![0.0, 1.0])); // known, unused
    write_safetensors(&f, &extra);
    let e = ResNet::from_file(ResnetDepth::R18, &f, &dev).unwrap_err().to_string();
    assert!(e.contains("1 tensor(s) not part of resnet18") && e.contains("`layer4.1.se.weight`"), "{e}");
    sd.insert("layer2.0.downsample.0.weight".into(), (vec![128, 64, 3, 3], vec![0.0; 128 * 64 * 9]));
    write_safetensors(&f, &sd);
    let e = ResNet::from_file(ResnetDepth::R18, &f, &dev).unwrap_err().to_string();
    assert!(e.contains("`layer2.0.downsample.0.weight` has shape [128, 64, 3, 3], resnet18 expects shape [128, 64, 1, 1]"), "{e}");
    sd.insert("layer2.0.downsample.0.weight".into(), (vec![128, 64, 1, 1], vec![f32::NAN; 128 * 64]));
    write_safetensors(&f, &sd);
    let e = ResNet::from_file(ResnetDepth::R18, &f, &dev).unwrap_err().to_string();
    assert!(e.contains("non-finite") && e.contains("downsample.0.weight"), "{e}");
    // Not a state_dict at all, a missing file, an unknown extension.
    std::fs::write(&f, b"garbage").unwrap();
    let e = ResNet::from_file(ResnetDepth::R18, &f, &dev).unwrap_err().to_string();
    assert!(e.contains("w.safetensors"), "{e}");
    let p = out.join("w.pth");
    std::fs::write(&p, b"PK\x03\x04 truncated zip").unwrap();
    let e = ResNet::from_file(ResnetDepth::R18, &p, &dev).unwrap_err().to_string();
    assert!(e.contains("w.pth") && e.contains("not a readable state_dict"), "{e}");
    let e = ResNet::from_file(ResnetDepth::R18, &out.join("absent.pth"), &dev).unwrap_err().to_string();
    assert!(e.contains("absent.pth: no such file"), "{e}");
    std::fs::write(out.join("w.onnx"), b"x").unwrap();
    let e = ResNet::from_file(ResnetDepth::R18, &out.join("w.onnx"), &dev).unwrap_err().to_string();
    assert!(e.contains("unknown weights format"), "{e}");
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
#[ignore = "needs $MARGIN_RESNET_GOLDEN from make_resnet_golden.py --arch resnet34 / resnet50"]
fn deeper_resnets_match_torchvision() {
    let root = PathBuf::from(std::env::var_os("MARGIN_RESNET_GOLDEN").expect("set MARGIN_RESNET_GOLDEN"));
    for depth in [ResnetDepth::R34, ResnetDepth::R50] {
        let dir = root.join(depth.name());
        let net = ResNet::from_file(depth, &dir.join(format!("{}.pth", depth.name())), &Device::flex()).unwrap();
        assert_matches(&net, &dir);
    }
}
