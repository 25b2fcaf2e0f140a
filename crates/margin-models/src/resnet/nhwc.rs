//! ResNet inference on the CPU in channels-last (NHWC) layout: the eval-mode forward pass
//! `margin embed`, evaluation and every frozen-backbone use take on `flex`.
//!
//! Why a second forward pass: Burn's `flex` convolution converts its NCHW input to NHWC, runs
//! im2col + GEMM, and converts back, on every one of a ResNet-18's 20 convolutions; BatchNorm,
//! ReLU and the residual add are further passes over the activation. Here the activation stays
//! NHWC from the stem to the pooled features, and each convolution is one pass:
//!
//! - BatchNorm (running statistics) is folded into the convolution once, when the plan is built
//!   ([`NhwcResNet::new`]): `W'[co] = W[co] · s`, `b' = β − μ · s`, `s = γ / √(σ² + ε)`, and the
//!   weights are reordered to `[kh, kw, C_in] × C_out`, the GEMM's right-hand side;
//! - per tile of output pixels, the destination is filled with the bias (plus the residual,
//!   for a block's last convolution), the tile's im2col rows are gathered (each a run of
//!   `C_in` contiguous floats per kernel tap; a 1×1 stride-1 convolution reads its input in
//!   place), one GEMM accumulates `col · W'` onto it, and ReLU is applied while the tile is
//!   still in cache;
//! - tiles run in parallel on rayon (the GEMM itself on the calling thread); every output
//!   element is one GEMM dot product of fixed order, so the result does not depend on the
//!   number of threads.
//!
//! [`super::ResNet::forward_features_reference`] (Burn's ops) is the oracle it is tested
//! against (`tests` below, and the torchvision goldens through `forward_features`).

use core::mem::MaybeUninit;
use std::cell::RefCell;

use margin_linalg::buffer;
use margin_linalg::gemm::gemm_ab;
use rayon::prelude::*;

use super::block::Block;
use super::winograd::Winograd3x3;
use super::net::ResNet;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;

/// Bytes of im2col rows one tile gathers (the GEMM's left-hand side): large enough for the
/// GEMM to run at speed, small enough to stay in the last-level cache.
pub(super) const COL_TILE_BYTES: usize = 1 << 21;

/// `out[p, c] = bias[c] + residual[p, c]` (or `bias[c]`) for every pixel `p` of `out`
/// (`[pixels, C]`), returned initialised: the destination a convolution's GEMM accumulates onto.
pub(super) fn prefill<'a>(out: &'a mut [MaybeUninit<f32>], bias: &[f32], residual: Option<&[f32]>) -> &'a mut [f32] {
    let c = bias.len();
    match residual {
        Some(r) => {
            debug_assert_eq!(r.len(), out.len());
            buffer::init_from(out, r.chunks_exact(c).flat_map(|px| px.iter().zip(bias).map(|(r, b)| r + b)))
        }
        None => buffer::init_from(out, bias.iter().copied().cycle()),
    }
}

thread_local! {
    /// Per-thread scratch (im2col rows, Winograd's transformed tiles): allocated once per
    /// worker thread and reused by every tile it runs, never zeroed between uses.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch vector.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

/// The first `len` elements of `v`, grown (zero-filled only where it grows) when shorter.
/// The caller overwrites what it reads.
pub(super) fn scratch(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// `(stride, padding)` of a convolution the channels-last kernels serve (this plan's and the
/// training path's): square kernel and stride, explicit symmetric padding, no dilation or
/// groups; `None` otherwise.
pub(super) fn square_geometry(conv: &Conv2d) -> Option<(usize, usize)> {
    let [_, _, kh, kw] = conv.weight.val().dims();
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else { return None };
    let symmetric = top == left && top == bottom && top == right;
    (kh == kw && conv.stride[0] == conv.stride[1] && symmetric && conv.dilation == [1, 1] && conv.groups == 1).then_some((conv.stride[0], top))
}

/// A convolution with its BatchNorm folded in, ready for NHWC GEMM (the training path,
/// `train_conv.rs`, builds it from raw weights with a zero bias).
#[derive(Debug, Clone)]
pub(super) struct FoldedConv {
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
    pub(super) c_in: usize,
    pub(super) c_out: usize,
    /// `[kernel · kernel · c_in, c_out]`, row-major; row `(ky · kernel + kx) · c_in + ci`.
    pub(super) weight: Vec<f32>,
    /// `[c_out]`.
    bias: Vec<f32>,
    /// The Winograd form of a 3×3 stride-1 padding-1 convolution (`winograd.rs`).
    winograd: Option<Winograd3x3>,
}

fn host(t: burn::tensor::Tensor<1>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("converted to f32")
}

impl FoldedConv {
    /// `bn(conv(·))` with running statistics, or `None` when the convolution is not one a
    /// ResNet has (square kernel, symmetric explicit padding, no dilation or groups).
    fn new(conv: &Conv2d, bn: &BatchNorm) -> Option<Self> {
        let [c_out, c_in, kh, _] = conv.weight.val().dims();
        let (stride, padding) = square_geometry(conv)?;
        let var = host(bn.running_var.value());
        let mean = host(bn.running_mean.value());
        let (gamma, beta) = (host(bn.gamma.val()), host(bn.beta.val()));
        let b0 = conv.bias.as_ref().map(|b| host(b.val())).unwrap_or_else(|| vec![0.0; c_out]);
        let w = conv.weight.val().into_data().convert::<f32>().try_to_vec::<f32>().expect("converted to f32");
        let eps = bn.epsilon as f32;
        let scale: Vec<f32> = (0..c_out).map(|co| gamma[co] / (var[co] + eps).sqrt()).collect();
        let bias: Vec<f32> = (0..c_out).map(|co| beta[co] - (mean[co] - b0[co]) * scale[co]).collect();
        Some(Self::from_oihw(&w, [c_out, c_in, kh], stride, padding, &scale, bias))
    }

    /// From weights in Burn's / torchvision's layout `[C_out, C_in, k, k]` (`w`), each output
    /// channel scaled by `scale[co]`, with `bias` added: `conv(x; W·s) + b`.
    pub(super) fn from_oihw(w: &[f32], [c_out, c_in, k]: [usize; 3], stride: usize, padding: usize, scale: &[f32], bias: Vec<f32>) -> Self {
        debug_assert_eq!(w.len(), c_out * c_in * k * k);
        // Destination order (row `(ky·k + kx)·C_in + ci`, column `co`), read from `[co, ci, ky, kx]`.
        let mut weight = Vec::with_capacity(k * k * c_in * c_out);
        for tap in 0..k * k {
            for ci in 0..c_in {
                weight.extend((0..c_out).map(|co| w[(co * c_in + ci) * k * k + tap] * scale[co]));
            }
        }
        let winograd = (k == 3 && stride == 1 && padding == 1).then(|| Winograd3x3::new(&weight, &bias, c_in, c_out));
        FoldedConv { kernel: k, stride, padding, c_in, c_out, weight, bias, winograd }
    }

    /// A convolution's geometry only (no weights): what [`Self::gather`] needs.
    pub(super) fn window(kernel: usize, stride: usize, padding: usize, c_in: usize) -> Self {
        FoldedConv { kernel, stride, padding, c_in, c_out: 0, weight: Vec::new(), bias: Vec::new(), winograd: None }
    }

    pub(super) fn out_size(&self, size: usize) -> usize {
        (size + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// `relu?(conv(x) + b' + residual?)`.
    ///
    /// # Shapes
    /// `x: [N, H, W, C_in] → [N, H', W', C_out]`; `residual` (when given) `[N, H', W', C_out]`.
    pub(super) fn forward(&self, x: NhwcView<'_>, residual: Option<NhwcView<'_>>, relu: bool) -> Nhwc {
        debug_assert_eq!(x.c, self.c_in);
        if let Some(w) = &self.winograd {
            return w.forward(x, residual, relu);
        }
        let (oh, ow) = (self.out_size(x.h), self.out_size(x.w));
        let rows = x.n * oh * ow;
        let (k, c_out) = (self.kernel * self.kernel * self.c_in, self.c_out);
        if let Some(r) = residual {
            debug_assert_eq!((r.n, r.h, r.w, r.c), (x.n, oh, ow, c_out));
        }
        let in_place = self.kernel == 1 && self.stride == 1 && self.padding == 0;
        // A function of the shapes only (never of the thread count), so that every GEMM call,
        // hence every output bit, is the same on any number of threads.
        let tile = (COL_TILE_BYTES / (4 * k)).clamp(16, 512);
        let fill = |buf: &mut [MaybeUninit<f32>]| {
            buf.par_chunks_mut(tile * c_out).enumerate().for_each(|(t, o)| {
                let r0 = t * tile;
                let m = o.len() / c_out;
                let o = prefill(o, &self.bias, residual.map(|r| &r.data[r0 * c_out..(r0 + m) * c_out]));
                with_scratch(|col| {
                    let lhs: &[f32] = if in_place {
                        &x.data[r0 * k..(r0 + m) * k]
                    } else {
                        let col = scratch(col, m * k);
                        self.gather(x, oh, ow, r0, col);
                        col
                    };
                    gemm_ab(m, c_out, k, lhs, &self.weight, o, true);
                });
                if relu {
                    o.iter_mut().for_each(|v| *v = v.max(0.0));
                }
            })
        };
        // SAFETY: `prefill` writes every element of every chunk, and the chunks cover `buf`.
        let out = unsafe { buffer::build(rows * c_out, fill) };
        Nhwc { data: out, n: x.n, h: oh, w: ow, c: c_out }
    }

    /// The im2col rows `r0 .. r0 + col.len() / K` of the output (row = `(n · H' + y) · W' + x`),
    /// zeros where a tap falls into the padding.
    pub(super) fn gather(&self, x: NhwcView<'_>, oh: usize, ow: usize, r0: usize, col: &mut [f32]) {
        let (kk, ci) = (self.kernel, self.c_in);
        for (i, row) in col.chunks_exact_mut(kk * kk * ci).enumerate() {
            let r = r0 + i;
            let (b, oy, ox) = (r / (oh * ow), (r / ow) % oh, r % ow);
            for ky in 0..kk {
                let iy = (oy * self.stride + ky) as isize - self.padding as isize;
                for kx in 0..kk {
                    let ix = (ox * self.stride + kx) as isize - self.padding as isize;
                    let dst = &mut row[(ky * kk + kx) * ci..(ky * kk + kx + 1) * ci];
                    if iy < 0 || ix < 0 || iy as usize >= x.h || ix as usize >= x.w {
                        dst.fill(0.0);
                    } else {
                        let at = ((b * x.h + iy as usize) * x.w + ix as usize) * ci;
                        dst.copy_from_slice(&x.data[at..at + ci]);
                    }
                }
            }
        }
    }
}

/// A channels-last activation `[n, h, w, c]`.
#[derive(Debug, Clone)]
pub(super) struct Nhwc {
    pub(super) data: Vec<f32>,
    pub(super) n: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
}

/// A borrowed channels-last activation `[n, h, w, c]` (an [`Nhwc`]'s, or a `flex` tensor's
/// storage on the training path).
#[derive(Debug, Clone, Copy)]
pub(super) struct NhwcView<'a> {
    pub(super) data: &'a [f32],
    pub(super) n: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c: usize,
}

impl Nhwc {
    /// The borrowed view.
    pub(super) fn view(&self) -> NhwcView<'_> {
        NhwcView { data: &self.data, n: self.n, h: self.h, w: self.w, c: self.c }
    }

    /// From NCHW data.
    fn from_nchw(x: &[f32], [n, c, h, w]: [usize; 4]) -> Self {
        let mut data = vec![0f32; x.len()];
        data.par_chunks_mut(h * w * c).zip(x.par_chunks(c * h * w)).for_each(|(dst, src)| {
            for ch in 0..c {
                for p in 0..h * w {
                    dst[p * c + ch] = src[ch * h * w + p];
                }
            }
        });
        Nhwc { data, n, h, w, c }
    }

    /// Max-pooling 3×3, stride 2, padding 1 (padding never wins: at least one tap is inside).
    fn max_pool_3x3_s2(&self) -> Nhwc {
        let (oh, ow, c) = ((self.h + 2 - 3) / 2 + 1, (self.w + 2 - 3) / 2 + 1, self.c);
        let mut out = vec![f32::NEG_INFINITY; self.n * oh * ow * c];
        out.par_chunks_mut(ow * c).enumerate().for_each(|(row, o)| {
            let (b, oy) = (row / oh, row % oh);
            for iy in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(self.h) {
                for ox in 0..ow {
                    let dst = &mut o[ox * c..(ox + 1) * c];
                    for ix in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(self.w) {
                        let at = ((b * self.h + iy) * self.w + ix) * c;
                        dst.iter_mut().zip(&self.data[at..at + c]).for_each(|(d, s)| *d = d.max(*s));
                    }
                }
            }
        });
        Nhwc { data: out, n: self.n, h: oh, w: ow, c }
    }

    /// Mean over `h × w`, `[n, c]`.
    fn global_average(&self) -> Vec<f32> {
        let (hw, c) = (self.h * self.w, self.c);
        let mut out = vec![0f32; self.n * c];
        out.par_chunks_mut(c).zip(self.data.par_chunks(hw * c)).for_each(|(o, x)| {
            let mut acc = vec![0f64; c];
            for px in x.chunks_exact(c) {
                acc.iter_mut().zip(px).for_each(|(a, v)| *a += *v as f64);
            }
            o.iter_mut().zip(&acc).for_each(|(o, a)| *o = (*a / hw as f64) as f32);
        });
        out
    }
}

/// One residual block, folded.
#[derive(Debug, Clone)]
struct FoldedBlock {
    conv1: FoldedConv,
    conv2: FoldedConv,
    conv3: Option<FoldedConv>,
    downsample: Option<FoldedConv>,
}

impl FoldedBlock {
    fn new(b: &Block) -> Option<Self> {
        Some(FoldedBlock {
            conv1: FoldedConv::new(&b.conv1, &b.bn1)?,
            conv2: FoldedConv::new(&b.conv2, &b.bn2)?,
            conv3: match (&b.conv3, &b.bn3) {
                (Some(c), Some(bn)) => Some(FoldedConv::new(c, bn)?),
                _ => None,
            },
            downsample: match &b.downsample {
                Some(d) => Some(FoldedConv::new(&d.conv, &d.bn)?),
                None => None,
            },
        })
    }

    /// `relu(F(x) + shortcut(x))`, the residual added inside the last convolution's tile.
    fn forward(&self, x: Nhwc) -> Nhwc {
        let identity = self.downsample.as_ref().map(|d| d.forward(x.view(), None, false));
        let out = self.conv1.forward(x.view(), None, true);
        let shortcut = identity.as_ref().unwrap_or(&x);
        match &self.conv3 {
            Some(c3) => c3.forward(self.conv2.forward(out.view(), None, true).view(), Some(shortcut.view()), true),
            None => self.conv2.forward(out.view(), Some(shortcut.view()), true),
        }
    }
}

/// A [`ResNet`] in eval mode (running BatchNorm statistics) as an NHWC inference plan.
#[derive(Debug, Clone)]
pub struct NhwcResNet {
    stem: FoldedConv,
    blocks: Vec<FoldedBlock>,
}

impl NhwcResNet {
    /// The plan of `net`: BatchNorm folded, weights reordered (a weight-sized copy).
    /// `None` when a layer is not shaped as torchvision builds it.
    pub fn new(net: &ResNet) -> Option<Self> {
        if !net.torchvision_max_pool() {
            return None;
        }
        let stem = FoldedConv::new(&net.conv1, &net.bn1)?;
        let blocks = net.layers.iter().flat_map(|s| &s.blocks).map(FoldedBlock::new).collect::<Option<Vec<_>>>()?;
        Some(NhwcResNet { stem, blocks })
    }

    /// The number of pooled features (512 or 2048).
    pub fn feature_dim(&self) -> usize {
        self.blocks.last().map_or(self.stem.c_out, |b| b.conv3.as_ref().unwrap_or(&b.conv2).c_out)
    }

    /// Globally average-pooled features of a batch of NCHW images, row-major `[N, F]`; equals
    /// [`ResNet::forward_features`] in eval mode up to rounding.
    ///
    /// # Shapes
    /// `x: [N, 3, H, W]` (`dims`) → `[N, F]`.
    ///
    /// # Panics
    /// When `x.len()` is not the product of `dims` or the channels are not the stem's (the
    /// caller checks both; see `ResNet::forward_features`).
    pub fn features(&self, x: &[f32], dims: [usize; 4]) -> Vec<f32> {
        assert_eq!(x.len(), dims.iter().product::<usize>(), "NhwcResNet::features: data does not match {dims:?}");
        assert_eq!(dims[1], self.stem.c_in, "NhwcResNet::features: {} channels for a stem of {}", dims[1], self.stem.c_in);
        let x = Nhwc::from_nchw(x, dims);
        let mut x = self.stem.forward(x.view(), None, true).max_pool_3x3_s2();
        for b in &self.blocks {
            x = b.forward(x);
        }
        x.global_average()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::resnet::ResNetConfig;
    use burn::module::{Module, Param, RunningState};
    use burn::tensor::{Device, Distribution, Tensor};
    use margin_data::ResnetDepth;

    /// BatchNorm statistics and affine parameters away from the identity, so that a wrong
    /// fold (or a fold that is skipped) shows.
    pub(in crate::resnet) fn perturb(bn: &mut BatchNorm, device: &Device) {
        let c = bn.gamma.val().dims()[0];
        let u = |lo, hi| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), device);
        bn.running_mean = RunningState::new(u(-0.3, 0.3));
        bn.running_var = RunningState::new(u(0.5, 1.5));
        bn.gamma = Param::from_tensor(u(0.5, 1.2));
        bn.beta = Param::from_tensor(u(-0.2, 0.2));
    }

    pub(in crate::resnet) fn perturbed(depth: ResnetDepth, device: &Device) -> ResNet {
        let mut net = ResNetConfig::new(depth).init(device);
        perturb(&mut net.bn1, device);
        for b in net.layers.iter_mut().flat_map(|s| s.blocks.iter_mut()) {
            perturb(&mut b.bn1, device);
            perturb(&mut b.bn2, device);
            if let Some(bn) = b.bn3.as_mut() {
                perturb(bn, device);
            }
            if let Some(d) = b.downsample.as_mut() {
                perturb(&mut d.bn, device);
            }
        }
        net
    }

    fn max_rel_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        let (a, b) = (a.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
    }

    /// The NHWC plan equals Burn's composition (convolution, BatchNorm with running
    /// statistics, ReLU, max-pool, residual add, average pool) for basic blocks and
    /// bottlenecks, at sizes that exercise odd spatial extents and the padding.
    #[test]
    fn nhwc_plan_equals_burns_ops_on_basic_and_bottleneck_resnets() {
        let device = Device::flex();
        device.seed(11);
        for (depth, n, hw) in [(ResnetDepth::R18, 3, [37, 45]), (ResnetDepth::R50, 2, [33, 32])] {
            let net = perturbed(depth, &device);
            let x = Tensor::<4>::random([n, 3, hw[0], hw[1]], Distribution::Normal(0.0, 1.0), &device);
            let plan = NhwcResNet::new(&net).expect("torchvision's layout");
            assert_eq!(plan.feature_dim(), depth.feature_dim());
            let fast = net.forward_features(x.clone());
            assert_eq!(fast.dims(), [n, depth.feature_dim()]);
            let d = max_rel_diff(fast, net.forward_features_reference(x));
            assert!(d < 2e-5, "{depth:?}: {d}");
        }
    }

    /// On the training device a fully frozen backbone takes the plan too (no gradient is
    /// wanted), and gives what Burn's ops give; an unfrozen one does not take it.
    #[test]
    fn a_frozen_backbone_on_the_autodiff_device_takes_the_plan() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let net = perturbed(ResnetDepth::R18, &device);
        let x = Tensor::<4>::random([2, 3, 40, 40], Distribution::Normal(0.0, 1.0), &device);
        assert!(!net.takes_nhwc_plan(&x), "trainable: Burn's ops");
        let frozen = net.freeze();
        assert!(frozen.takes_nhwc_plan(&x));
        assert!(!frozen.takes_nhwc_plan(&x.clone().require_grad()), "an input that wants a gradient");
        let d = max_rel_diff(frozen.forward_features(x.clone()), frozen.forward_features_reference(x));
        assert!(d < 2e-5, "{d}");
    }

    /// Winograd F(2×2, 3×3) equals the direct im2col convolution (odd and even sizes, 1×1
    /// and 2×2 images, with a residual and ReLU, and without).
    #[test]
    fn winograd_equals_the_direct_convolution() {
        let device = Device::flex();
        device.seed(9);
        for (c_in, c_out, h, w) in [(5, 7, 9, 6), (16, 8, 1, 1), (3, 4, 2, 3), (8, 8, 7, 7)] {
            let conv = crate::resnet::block::conv(c_in, c_out, 3, 1, &device);
            let mut bn = crate::resnet::block::batch_norm(c_out, &device);
            perturb(&mut bn, &device);
            let fast = FoldedConv::new(&conv, &bn).unwrap();
            assert!(fast.winograd.is_some());
            let direct = FoldedConv { winograd: None, ..fast.clone() };
            let data = |c: usize, k: f32| (0..2 * h * w * c).map(|i| ((i as f32) * k).sin()).collect::<Vec<_>>();
            let x = Nhwc { data: data(c_in, 0.37), n: 2, h, w, c: c_in };
            let r = Nhwc { data: data(c_out, 0.11), n: 2, h, w, c: c_out };
            for (res, relu) in [(None, false), (Some(&r), true)] {
                let (a, b) = (fast.forward(x.view(), res.map(Nhwc::view), relu).data, direct.forward(x.view(), res.map(Nhwc::view), relu).data);
                let d = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(d < 1e-5, "{c_in}->{c_out} {h}x{w}: {d}");
            }
        }
    }

    /// The same bits on one thread as on several (each output is one fixed-order GEMM dot).
    #[test]
    fn the_plan_does_not_depend_on_the_thread_count() {
        let device = Device::flex();
        device.seed(5);
        let net = perturbed(ResnetDepth::R18, &device);
        let plan = NhwcResNet::new(&net).unwrap();
        let x: Vec<f32> = (0..2 * 3 * 48 * 48).map(|i| ((i as f32) * 0.013).sin()).collect();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| plan.features(&x, [2, 3, 48, 48]));
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(|| plan.features(&x, [2, 3, 48, 48]));
        assert_eq!(one, three);
    }
}
