//! Which device a run computes on: `--device` of every command that runs a model or a loss,
//! and `[train] device` in the run configuration.
//!
//! [`DeviceSpec`] is the typed choice (`cpu`, `cuda[:N]`, `wgpu[:N]`, `vulkan`), parsed once
//! ([`FromStr`], and through it serde, so the TOML and the flag accept the same spellings and
//! give the same error). [`DeviceSpec::device`] turns it into Burn's [`Device`], or a
//! [`DeviceError`] that says what to do: a device this build lacks names the cargo feature to
//! build with; a device the machine lacks says so, with the backend's own reason.
//!
//! Design reasons:
//! - `cpu` is Burn's `flex` backend, the only one margin's fused CPU kernels (3×3
//!   convolution, BatchNorm→ReLU→MaxPool, the losses' host path) serve; every other device
//!   takes Burn's own ops and the losses' device path. That dispatch is a check of the
//!   tensor's device where each kernel is called (`margin_models::kernels::fused_available`,
//!   `margin`'s `host_path_serves`), not a flag carried here.
//! - wgpu devices are brought up with `Device::wgpu_options().init()`, which returns an
//!   error (no adapter, no such API) instead of panicking at the first tensor; a device is
//!   initialised once per process and kept, since Burn refuses a second `init` of the same
//!   adapter. `vulkan` is wgpu pinned to Vulkan: the same build, no fallback to another API.
//! - CUDA has no such entry point in Burn 0.22, so the device is probed with one small
//!   tensor under `catch_unwind` (the driver's absence surfaces as a panic there).

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A device to compute on, as `--device` and `[train] device` spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The CPU: Burn's `flex` backend with margin's fused kernels (`cpu`).
    #[default]
    Cpu,
    /// An NVIDIA GPU by CUDA index (`cuda` = `cuda:0`, `cuda:N`); the `cuda` feature.
    Cuda(usize),
    /// A GPU through wgpu on whichever graphics API the machine offers (`wgpu`: the best
    /// adapter, overridable with `CUBECL_WGPU_DEFAULT_DEVICE`; `wgpu:N`: the N-th discrete
    /// GPU); the `wgpu` feature.
    Wgpu(Option<usize>),
    /// wgpu pinned to Vulkan, the best Vulkan adapter (`vulkan`); the `wgpu` feature.
    Vulkan,
}

/// The spellings [`DeviceSpec`] accepts, for error messages and `--help`.
pub const DEVICE_SPELLINGS: &str = "cpu, cuda, cuda:N, wgpu, wgpu:N or vulkan";

/// A device name that is not one of [`DEVICE_SPELLINGS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device {given:?}: expected {DEVICE_SPELLINGS} (N a device index >= 0)")]
pub struct DeviceSpecError {
    /// What was given.
    pub given: String,
}

/// Why a [`DeviceSpec`] cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// This build of margin does not include the device's backend.
    #[error(
        "device {device}: this margin was built without the `{feature}` feature; build it with `cargo build --release -p margin-cli --features {feature}` (this build has: {built})"
    )]
    NotBuilt {
        /// The device asked for.
        device: DeviceSpec,
        /// The cargo feature that adds it.
        feature: &'static str,
        /// The devices this build has.
        built: &'static str,
    },
    /// The build has the backend, but the machine has no such device (or its driver).
    #[error("device {device} is not available on this machine: {reason}{hint}")]
    Unavailable {
        /// The device asked for.
        device: DeviceSpec,
        /// The backend's reason.
        reason: String,
        /// What to check, per backend.
        hint: &'static str,
    },
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::Wgpu(None) => f.write_str("wgpu"),
            DeviceSpec::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
            DeviceSpec::Vulkan => f.write_str("vulkan"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DeviceSpecError { given: s.to_string() };
        let lower = s.trim().to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            Some((n, i)) => (n, Some(i.parse::<usize>().map_err(|_| err())?)),
            None => (lower.as_str(), None),
        };
        match (name, index) {
            ("cpu", None) => Ok(DeviceSpec::Cpu),
            ("cuda", i) => Ok(DeviceSpec::Cuda(i.unwrap_or(0))),
            ("wgpu", i) => Ok(DeviceSpec::Wgpu(i)),
            ("vulkan", None) => Ok(DeviceSpec::Vulkan),
            _ => Err(err()),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceSpecError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

/// The devices this build has, for [`DeviceError::NotBuilt`].
#[cfg_attr(all(feature = "wgpu", feature = "cuda"), allow(dead_code))]
const BUILT: &str = match (cfg!(feature = "wgpu"), cfg!(feature = "cuda")) {
    (true, true) => "cpu, cuda, wgpu, vulkan",
    (true, false) => "cpu, wgpu, vulkan",
    (false, true) => "cpu, cuda",
    (false, false) => "cpu",
};

impl DeviceSpec {
    /// Whether this is the CPU (the default; left out of a written configuration).
    pub fn is_cpu(&self) -> bool {
        *self == DeviceSpec::Cpu
    }

    /// Whether the device computes in `f64` (WGSL, wgpu's shader language, has no float64).
    pub fn has_f64(&self) -> bool {
        !matches!(self, DeviceSpec::Wgpu(_) | DeviceSpec::Vulkan)
    }

    /// The Burn device (without autodiff: training adds `.autodiff()`), brought up now, so
    /// that a missing backend or device is this error rather than a panic mid-run.
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::Cuda(index) => cuda(self, index),
            DeviceSpec::Wgpu(_) | DeviceSpec::Vulkan => wgpu(self),
        }
    }
}

/// Held while a backend's random generator is seeded and an initial network drawn from it.
///
/// Burn's backends keep one generator per process, set by `Device::seed`: two runs in one
/// process (test threads, bindings, parallel sweep runs) would interleave their draws and a
/// seed would stop fixing the weights. Every seeded draw of the workspace's runs goes
/// through [`seeded`], so it is atomic.
static SEEDED_DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `draw()` with `device`'s generator seeded by `seed` and no other seeded draw of this
/// process in between.
pub(crate) fn seeded<T>(device: &Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    // A poisoned lock only means another draw panicked; the generator is reseeded here.
    let _guard = SEEDED_DRAW.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    draw()
}

/// Whether `device` (with or without autodiff) is Burn's CPU backend, `flex`: where margin's
/// host-side paths (the fused optimizer, in-place gradient reads, drawing weights in place) apply.
pub(crate) fn is_flex(device: &Device) -> bool {
    matches!(device.clone().without_autodiff().as_dispatch(), burn::backend::DispatchDevice::Flex(_))
}

/// The initial network of a fresh run of `config` on `device` (the device already seeded
/// with `config.seed`): on `flex` built there, as always; on any other device built on the
/// CPU from the same seed and moved, so that a seed gives the same initial weights on every
/// device (each backend's random generator draws its own numbers) and runs on two devices
/// agree within rounding.
pub(crate) fn init_model(config: &crate::TrainConfig, sample_shape: &[usize], device: &Device) -> Result<margin_models::EmbeddingNet, margin_models::ModelError> {
    use burn::module::Module;
    use margin_models::BuildEncoder;
    if is_flex(device) {
        return Ok(drawn_now(config.model.init_pretrained(sample_shape, device)?));
    }
    let host = if device.is_autodiff() { Device::flex().autodiff() } else { Device::flex() };
    host.seed(config.seed);
    // Forked, not moved: a moved tensor stays a node of the host's graph, and the device's
    // first backward would consume it ("graph tape has already been consumed").
    Ok(drawn_now(config.model.init_pretrained(sample_shape, &host)?).fork(device))
}

/// `model` with every parameter drawn now.
///
/// Burn initialises a parameter lazily, at its first use, from the generator of the device
/// it meets then: a network moved to another device before its first forward was drawn
/// there (another backend's generator: other weights for the same seed — wgpu's first steps
/// differed from the CPU's), and a draw after [`seeded`] returned could interleave with
/// another run's. Touching every parameter here draws them on the host, under the lock.
pub fn drawn_now<M: burn::module::Module>(model: M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
    model
}

#[cfg(feature = "cuda")]
fn cuda(spec: DeviceSpec, index: usize) -> Result<Device, DeviceError> {
    let device = Device::cuda(index);
    let probe = device.clone();
    // The default hook would print the panic as if margin crashed; the reason goes into
    // the error instead.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || burn::tensor::Tensor::<1>::zeros([1], &probe).into_data()));
    std::panic::set_hook(hook);
    match r {
        Ok(_) => Ok(device),
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the CUDA runtime failed to start".to_string());
            Err(DeviceError::Unavailable { device: spec, reason, hint: " (`nvidia-smi` lists the CUDA devices and the driver)" })
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(spec: DeviceSpec, _index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt { device: spec, feature: "cuda", built: BUILT })
}

#[cfg(feature = "wgpu")]
fn wgpu(spec: DeviceSpec) -> Result<Device, DeviceError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use burn::tensor::DeviceKind;
    use burn::tensor::wgpu::WgpuBackend;

    static UP: OnceLock<Mutex<HashMap<DeviceSpec, Device>>> = OnceLock::new();
    let mut up = UP.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = up.get(&spec) {
        return Ok(d.clone());
    }
    let (kind, api) = match spec {
        DeviceSpec::Wgpu(None) => (DeviceKind::DefaultDevice, WgpuBackend::Auto),
        DeviceSpec::Wgpu(Some(i)) => (DeviceKind::DiscreteGpu(i), WgpuBackend::Auto),
        _ => (DeviceKind::DefaultDevice, WgpuBackend::Vulkan),
    };
    let device = Device::wgpu_options().device_kind(kind).graphics_api(api).init().map_err(|e| DeviceError::Unavailable {
        device: spec,
        reason: e.to_string(),
        hint: " (`vulkaninfo --summary` lists the Vulkan devices; on Debian/Ubuntu `apt install mesa-vulkan-drivers` adds Mesa's software one)",
    })?;
    up.insert(spec, device.clone());
    Ok(device)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(spec: DeviceSpec) -> Result<Device, DeviceError> {
    Err(DeviceError::NotBuilt { device: spec, feature: "wgpu", built: BUILT })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips() {
        for (s, d) in [
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
            ("wgpu", DeviceSpec::Wgpu(None)),
            ("wgpu:1", DeviceSpec::Wgpu(Some(1))),
            ("vulkan", DeviceSpec::Vulkan),
        ] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), d, "{s}");
            assert_eq!(d.to_string().parse::<DeviceSpec>().unwrap(), d, "{d}");
        }
        assert_eq!(" CUDA:2 ".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(2));
    }

    #[test]
    fn bad_spellings_name_the_accepted_ones() {
        for s in ["gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0", "vulkan:1", "", "metal"] {
            let e = s.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(e.contains(&format!("{s:?}")) && e.contains(DEVICE_SPELLINGS), "{s}: {e}");
        }
    }

    #[test]
    fn a_device_the_build_lacks_names_its_feature() {
        let cpu = DeviceSpec::Cpu.device().unwrap();
        assert!(matches!(cpu.as_dispatch(), burn::backend::DispatchDevice::Flex(_)));
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::Cuda(0).device().unwrap_err();
            assert!(matches!(e, DeviceError::NotBuilt { feature: "cuda", .. }), "{e}");
            assert!(e.to_string().contains("--features cuda"), "{e}");
        }
        if !cfg!(feature = "wgpu") {
            for d in [DeviceSpec::Wgpu(None), DeviceSpec::Vulkan] {
                let e = d.device().unwrap_err();
                assert!(matches!(e, DeviceError::NotBuilt { feature: "wgpu", .. }), "{e}");
            }
        }
    }
}
