//! torchvision's `state_dict` key names for a [`ResNet`], from one walk over the module
//! ([`for_each_slot`]): the expected keys, the loader's assignments and the export are the
//! same walk, so they cannot disagree. And what a file's keys say about its architecture
//! ([`detect`]), for the error that names it.

use std::collections::BTreeMap;

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;

use super::net::ResNet;

/// A parameter-holding layer and its torchvision key prefix (`layer1.0.bn2`).
pub enum Slot<'a> {
    /// `prefix.weight` `[C_out, C_in, k, k]`.
    Conv(&'a mut Conv2d),
    /// `prefix.weight`, `.bias`, `.running_mean`, `.running_var`, each `[C]`
    /// (and `.num_batches_tracked`, which is ignored).
    Bn(&'a mut BatchNorm),
}

/// The four tensors of a BatchNorm, by torchvision suffix.
pub const BN_SUFFIXES: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];

/// Calls `f(prefix, slot)` for every layer of `net` in torchvision's order.
pub fn for_each_slot(net: &mut ResNet, f: &mut dyn FnMut(&str, Slot<'_>)) {
    f("conv1", Slot::Conv(&mut net.conv1));
    f("bn1", Slot::Bn(&mut net.bn1));
    for (s, stage) in net.layers.iter_mut().enumerate() {
        for (i, b) in stage.blocks.iter_mut().enumerate() {
            let p = format!("layer{}.{i}", s + 1);
            f(&format!("{p}.conv1"), Slot::Conv(&mut b.conv1));
            f(&format!("{p}.bn1"), Slot::Bn(&mut b.bn1));
            f(&format!("{p}.conv2"), Slot::Conv(&mut b.conv2));
            f(&format!("{p}.bn2"), Slot::Bn(&mut b.bn2));
            if let Some(c) = b.conv3.as_mut() {
                f(&format!("{p}.conv3"), Slot::Conv(c));
            }
            if let Some(n) = b.bn3.as_mut() {
                f(&format!("{p}.bn3"), Slot::Bn(n));
            }
            if let Some(d) = b.downsample.as_mut() {
                f(&format!("{p}.downsample.0"), Slot::Conv(&mut d.conv));
                f(&format!("{p}.downsample.1"), Slot::Bn(&mut d.bn));
            }
        }
    }
}

/// Every tensor key `net` needs with its shape, in torchvision's order.
pub fn expected_keys(net: &mut ResNet) -> Vec<(String, Vec<usize>)> {
    let mut keys = Vec::new();
    for_each_slot(net, &mut |p, slot| match slot {
        Slot::Conv(c) => keys.push((format!("{p}.weight"), c.weight.dims().to_vec())),
        Slot::Bn(b) => {
            let c = b.gamma.dims()[0];
            keys.extend(BN_SUFFIXES.iter().map(|s| (format!("{p}.{s}"), vec![c])));
        }
    });
    keys
}

/// Keys of a torchvision ResNet file that the backbone does not use: the ImageNet
/// classifier and BatchNorm's step counters.
pub fn is_unused_part(key: &str) -> bool {
    key == "fc.weight" || key == "fc.bias" || key.ends_with(".num_batches_tracked")
}

/// What a file's keys describe: `resnet50`, or `a ResNet with bottleneck blocks [3, 4, 23, 3]`
/// for depths margin does not build; `None` when there are no `layerK.N.conv1` keys at all.
pub fn detect<T>(keys: &BTreeMap<String, T>) -> Option<String> {
    let mut blocks = [0usize; 4];
    for k in keys.keys() {
        let Some(rest) = k.strip_prefix("layer") else { continue };
        let mut it = rest.splitn(3, '.');
        let (Some(s), Some(i), Some(tail)) = (it.next(), it.next(), it.next()) else { continue };
        let (Ok(s), Ok(i)) = (s.parse::<usize>(), i.parse::<usize>()) else { continue };
        if (1..=4).contains(&s) && tail == "conv1.weight" {
            blocks[s - 1] = blocks[s - 1].max(i + 1);
        }
    }
    if blocks.iter().all(|&b| b == 0) {
        return None;
    }
    let bottleneck = keys.keys().any(|k| k.starts_with("layer1.0.conv3."));
    Some(match (bottleneck, blocks) {
        (false, [2, 2, 2, 2]) => "resnet18".into(),
        (false, [3, 4, 6, 3]) => "resnet34".into(),
        (true, [3, 4, 6, 3]) => "resnet50".into(),
        (true, [3, 4, 23, 3]) => "resnet101".into(),
        (true, [3, 8, 36, 3]) => "resnet152".into(),
        (b, blocks) => format!("a ResNet with {} blocks {blocks:?}", if b { "bottleneck" } else { "basic" }),
    })
}

