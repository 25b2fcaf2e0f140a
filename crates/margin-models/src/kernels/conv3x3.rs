//! 3×3 convolution (stride 1, padding 1, dilation 1, groups 1) for the Flex CPU backend, with
//! its gradients, as ConvNet-4 uses it.
//!
//! Forward: per tile of samples, im2col into a reusable per-thread buffer `[C_in·9, T·H·W]`,
//! then one GEMM (`gemm` crate, single-threaded; rayon over tiles) `W [C_out, C_in·9] · col`,
//! bias added as the GEMM's initial destination (or while scattering a multi-sample tile).
//!
//! Backward:
//! - `∂x` is the same convolution of `∂y` with the flipped, transposed kernel
//!   `W'[ci, co, kh, kw] = W[co, ci, 2 − kh, 2 − kw]` (exact for stride 1, padding 1), computed
//!   only when `x` is tracked (not for the first layer's images);
//! - `∂W = Σ_n ∂y_n · im2col(x_n)ᵀ`, accumulated per fixed chunk of samples and summed in chunk
//!   order, so the result does not depend on the thread count or on scheduling;
//! - `∂b = Σ_{n,p} ∂y` per channel (per-plane sums combined in `f64`).
//!
//! Only `f32`/`f64` with this exact configuration take the kernel; anything else (other dtypes,
//! shapes, mismatched parameters) falls back to Burn's own `conv2d` on the same backend.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;

use super::contiguous;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape};
use core::mem::MaybeUninit;
use rayon::prelude::*;

/// Backend extension: 3×3 convolution, stride 1, padding 1, dilation 1, groups 1.
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3Backend: Backend {
    /// `x: [N, C_in, H, W]`, `weight: [C_out, C_in, 3, 3]`, `bias: [C_out]` →
    /// `[N, C_out, H, W]`; equals `conv2d(x, weight, Some(bias), stride 1, padding 1)`.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The options this kernel implements.
pub fn conv3x3_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// Burn's own convolution on any backend (reference semantics and fallback).
fn unfused<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
) -> FloatTensor<B> {
    B::conv2d(x, weight, Some(bias), conv3x3_options())
}

impl Conv3x3Backend for Flex {
    fn conv3x3(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !fusable(&x, &weight, &bias) {
            return unfused::<Flex>(x, weight, bias);
        }
        forward(&contiguous(x), &contiguous(weight), Some(&contiguous(bias)))
    }
}

impl<C: CheckpointStrategy> Conv3x3Backend for Autodiff<Flex, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !fusable(x.primitive(), weight.primitive(), bias.primitive()) {
            return unfused::<Self>(x, weight, bias);
        }
        let xp = contiguous(x.primitive().clone());
        let wp = contiguous(weight.primitive().clone());
        let bp = contiguous(bias.primitive().clone());
        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = forward(&xp, &wp, Some(&bp));
                prep.finish(Conv3x3State { x: xp, weight: wp }, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&xp, &wp, Some(&bp))),
        }
    }
}

#[derive(Debug)]
struct Conv3x3Backward;

#[derive(Clone, Debug)]
struct Conv3x3State {
    /// Contiguous input.
    x: FlexTensor,
    /// Contiguous weight.
    weight: FlexTensor,
}

impl Backward<Flex, 3> for Conv3x3Backward {
    type State = Conv3x3State;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (dx, dw, db) = backward(
            &ops.state,
            &grad,
            node_x.is_some(),
            node_w.is_some(),
            node_b.is_some(),
        );
        if let (Some(node), Some(g)) = (node_x, dx) {
            grads.register::<Flex>(node.id, g);
        }
        if let (Some(node), Some(g)) = (node_w, dw) {
            grads.register::<Flex>(node.id, g);
        }
        if let (Some(node), Some(g)) = (node_b, db) {
            grads.register::<Flex>(node.id, g);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw-buffer kernels
// ---------------------------------------------------------------------------------------------

use margin::flex_element::FlexElement as KFloat;
use margin_linalg::buffer::build;
use margin_linalg::gemm::{Extents, Strided, strided_gemm};

fn shape_of(t: &FlexTensor) -> &[usize] {
    t.layout().shape()
}

fn fusable(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> bool {
    let dtype = x.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || weight.dtype() != dtype {
        return false;
    }
    let (xs, ws) = (shape_of(x), shape_of(weight));
    if xs.len() != 4 || ws.len() != 4 || xs.iter().any(|&d| d == 0) || ws[0] == 0 {
        return false;
    }
    if ws[1] != xs[1] || ws[2] != 3 || ws[3] != 3 {
        return false;
    }
    bias.dtype() == dtype && shape_of(bias) == [ws[0]]
}

#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
}

impl Dims {
    fn hw(&self) -> usize {
        self.h * self.w
    }
    fn k(&self) -> usize {
        self.cin * 9
    }
}

/// Target number of GEMM columns (output pixels) per tile: whole samples are grouped until a
/// tile has about this many, so small feature maps (7×7, 3×3) still make one sizeable GEMM.
const TILE_COLS: usize = 256;

fn tile_samples(hw: usize) -> usize {
    (TILE_COLS / hw).max(1)
}

/// im2col of `t` samples (`x`: `[t, c, h, w]`) into `col` (`[c·9, ld]`, row `ci·9 + kh·3 + kw`,
/// column `s·h·w + y·w + x`): `col = x[s, ci, y + kh − 1, x + kw − 1]`, zero outside.
/// Writes every element of the first `t·h·w` columns.
fn im2col<T: KFloat>(x: &[T], t: usize, c: usize, h: usize, w: usize, col: &mut [T], ld: usize) {
    let hw = h * w;
    for s in 0..t {
        for ci in 0..c {
            let plane = &x[(s * c + ci) * hw..][..hw];
            for kh in 0..3 {
                for kw in 0..3 {
                    let dst = &mut col[(ci * 9 + kh * 3 + kw) * ld + s * hw..][..hw];
                    for y in 0..h {
                        let d = &mut dst[y * w..(y + 1) * w];
                        let yy = y + kh;
                        if yy == 0 || yy > h {
                            d.fill(T::ZERO);
                            continue;
                        }
                        let src = &plane[(yy - 1) * w..yy * w];
                        match kw {
                            0 => {
                                d[0] = T::ZERO;
                                d[1..].copy_from_slice(&src[..w - 1]);
                            }
                            1 => d.copy_from_slice(src),
                            _ => {
                                d[..w - 1].copy_from_slice(&src[1..]);
                                d[w - 1] = T::ZERO;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `out[n, co, p] = bias[co] + Σ_k wm[co, k] · im2col(x_n)[k, p]`; writes every element of `out`
/// (`[N, C_out, H, W]`). `wm` is `[C_out, C_in·9]` row-major (the weight tensor's own layout).
fn conv_into<T: KFloat>(
    x: &[T],
    wm: &[T],
    bias: Option<&[T]>,
    out: &mut [MaybeUninit<T>],
    d: Dims,
) {
    let (hw, k, cout) = (d.hw(), d.k(), d.cout);
    let tile = tile_samples(hw);
    out.par_chunks_mut(tile * cout * hw)
        .zip(x.par_chunks(tile * d.cin * hw))
        .for_each_init(
            || (Vec::<T>::new(), Vec::<T>::new()),
            |(col, tmp), (o, xs)| {
                let t = xs.len() / (d.cin * hw);
                let tn = t * hw;
                // The output tile matches the input tile (the GEMMs' and copies' extents below
                // rely on it; `build` checks every element is written in debug builds).
                debug_assert_eq!(o.len(), t * cout * hw, "conv3x3: output tile of {t} samples");
                if col.len() < k * tn {
                    col.resize(k * tn, T::ZERO);
                }
                im2col(xs, t, d.cin, d.h, d.w, col, tn);
                if t == 1 {
                    let read = if let Some(b) = bias {
                        for (co, row) in o.chunks_mut(hw).enumerate() {
                            row.iter_mut().for_each(|v| {
                                v.write(b[co]);
                            });
                        }
                        true
                    } else {
                        false
                    };
                    // SAFETY: `o` is `[cout, hw]` (t = 1), `wm` `[cout, k]`, `col` `[k, ≥ tn]` with row
                    // stride `tn`, `o` aliasing neither (a distinct `&mut`); extents checked by
                    // `strided_gemm` in debug builds. With bias every element of `o` was written
                    // above (gemm reads it: read_dst); without, gemm writes `o` without reading it.
                    unsafe {
                        strided_gemm(
                            cout,
                            hw,
                            k,
                            Strided { ptr: o.as_mut_ptr() as *mut T, cs: 1, rs: hw as isize },
                            read,
                            Strided { ptr: wm.as_ptr(), cs: 1, rs: k as isize },
                            Strided { ptr: col.as_ptr(), cs: 1, rs: tn as isize },
                            Extents { dst: (o.as_ptr() as *const T, o.len()), lhs: (wm.as_ptr(), wm.len()), rhs: (col.as_ptr(), col.len()) },
                            gemm::Parallelism::None,
                        )
                    };
                } else {
                    if tmp.len() < cout * tn {
                        tmp.resize(cout * tn, T::ZERO);
                    }
                    // SAFETY: as above, `tmp` is `[cout, tn]` (resized above; initialised, not read:
                    // read_dst = false); extents checked by `strided_gemm` in debug builds.
                    unsafe {
                        strided_gemm(
                            cout,
                            tn,
                            k,
                            Strided { ptr: tmp.as_mut_ptr(), cs: 1, rs: tn as isize },
                            false,
                            Strided { ptr: wm.as_ptr(), cs: 1, rs: k as isize },
                            Strided { ptr: col.as_ptr(), cs: 1, rs: tn as isize },
                            Extents { dst: (tmp.as_ptr(), tmp.len()), lhs: (wm.as_ptr(), wm.len()), rhs: (col.as_ptr(), col.len()) },
                            gemm::Parallelism::None,
                        )
                    };
                    for s in 0..t {
                        for co in 0..cout {
                            let src = &tmp[co * tn + s * hw..][..hw];
                            let dst = &mut o[(s * cout + co) * hw..][..hw];
                            let b = bias.map_or(T::ZERO, |b| b[co]);
                            for (v, &u) in dst.iter_mut().zip(src) {
                                v.write(u + b);
                            }
                        }
                    }
                }
            },
        );
}

fn dims(x: &FlexTensor, weight: &FlexTensor) -> Dims {
    let (xs, ws) = (shape_of(x), shape_of(weight));
    Dims {
        n: xs[0],
        cin: xs[1],
        cout: ws[0],
        h: xs[2],
        w: xs[3],
    }
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>) -> FlexTensor {
    let d = dims(x, weight);
    let shape = Shape::new([d.n, d.cout, d.h, d.w]);
    let len = d.n * d.cout * d.hw();
    match x.dtype() {
        DType::F32 => {
            // SAFETY: `conv_into` writes every element of its output (checked by `build` in debug builds).
            let v = unsafe { build(len, |o| conv_into(f32::slice(x), f32::slice(weight), bias.map(f32::slice), o, d)) };
            f32::tensor(v, shape)
        }
        DType::F64 => {
            // SAFETY: `conv_into` writes every element of its output (checked by `build` in debug builds).
            let v = unsafe { build(len, |o| conv_into(f64::slice(x), f64::slice(weight), bias.map(f64::slice), o, d)) };
            f64::tensor(v, shape)
        }
        dt => unreachable!("conv3x3: unsupported dtype {dt:?}"),
    }
}

type Grads = (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>);

fn backward(
    st: &Conv3x3State,
    grad: &FlexTensor,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> Grads {
    match st.x.dtype() {
        DType::F32 => backward_impl::<f32>(st, grad, need_x, need_w, need_b),
        DType::F64 => backward_impl::<f64>(st, grad, need_x, need_w, need_b),
        dt => unreachable!("conv3x3: unsupported dtype {dt:?}"),
    }
}

/// Fixed number of sample chunks the weight gradient is split into (partial sums added in
/// chunk order): enough for load balance on a few cores, independent of the thread count.
const WGRAD_CHUNKS: usize = 16;

fn backward_impl<T: KFloat>(
    st: &Conv3x3State,
    grad: &FlexTensor,
    need_x: bool,
    need_w: bool,
    need_b: bool,
) -> Grads {
    let d = dims(&st.x, &st.weight);
    let (hw, k, cin, cout) = (d.hw(), d.k(), d.cin, d.cout);
    let g = T::slice(grad);
    let x = T::slice(&st.x);
    let wm = T::slice(&st.weight);

    let dx = need_x.then(|| {
        // ∂x = conv3x3(∂y, W') with W'[ci, co, kh, kw] = W[co, ci, 2 − kh, 2 − kw].
        let mut wf = vec![T::ZERO; cin * cout * 9];
        for co in 0..cout {
            for ci in 0..cin {
                for kk in 0..9 {
                    wf[(ci * cout + co) * 9 + (8 - kk)] = wm[(co * cin + ci) * 9 + kk];
                }
            }
        }
        let dt = Dims {
            n: d.n,
            cin: cout,
            cout: cin,
            h: d.h,
            w: d.w,
        };
        // SAFETY: `conv_into` writes every element of its output (checked by `build` in debug builds).
        let v = unsafe { build(d.n * cin * hw, |o| conv_into(g, &wf, None, o, dt)) };
        T::tensor(v, Shape::new([d.n, cin, d.h, d.w]))
    });

    let (dw, db) = if need_w || need_b {
        let tile = tile_samples(hw);
        let ntiles = d.n.div_ceil(tile);
        let chunk = ntiles.div_ceil(WGRAD_CHUNKS) * tile; // samples per chunk
        let partials: Vec<(Vec<T>, Vec<f64>)> = x
            .par_chunks(chunk * cin * hw)
            .zip(g.par_chunks(chunk * cout * hw))
            .map(|(xc, gc)| {
                let mut dw = if need_w {
                    vec![T::ZERO; cout * k]
                } else {
                    Vec::new()
                };
                let mut db = vec![0f64; cout];
                let (mut col, mut gt) = (Vec::<T>::new(), Vec::<T>::new());
                let mut first = true;
                for (xs, gs) in xc.chunks(tile * cin * hw).zip(gc.chunks(tile * cout * hw)) {
                    let t = xs.len() / (cin * hw);
                    let tn = t * hw;
                    // ∂y of the tile as [cout, tn].
                    let gtile: &[T] = if t == 1 {
                        gs
                    } else {
                        if gt.len() < cout * tn {
                            gt.resize(cout * tn, T::ZERO);
                        }
                        for s in 0..t {
                            for co in 0..cout {
                                gt[co * tn + s * hw..][..hw]
                                    .copy_from_slice(&gs[(s * cout + co) * hw..][..hw]);
                            }
                        }
                        &gt[..cout * tn]
                    };
                    if need_b {
                        for co in 0..cout {
                            let row = &gtile[co * tn..(co + 1) * tn];
                            let mut acc = [T::ZERO; 8];
                            let chunks = row.chunks_exact(8);
                            let rem = chunks.remainder();
                            for c8 in chunks {
                                for j in 0..8 {
                                    acc[j] = acc[j] + c8[j];
                                }
                            }
                            let mut s: f64 = acc.iter().map(|v| v.f()).sum();
                            s += rem.iter().map(|v| v.f()).sum::<f64>();
                            db[co] += s;
                        }
                    }
                    if need_w {
                        if col.len() < k * tn {
                            col.resize(k * tn, T::ZERO);
                        }
                        im2col(xs, t, cin, d.h, d.w, &mut col, tn);
                        // dw[cout, k] += gtile[cout, tn] · colᵀ[tn, k]
                        // SAFETY: shapes as stated (`dw` `[cout, k]`, `gtile` `[cout, tn]`, `col`
                        // `[k, ≥ tn]`), colᵀ(i, j) = col[j·tn + i]; `dw` is initialised (read when
                        // not the first tile) and aliases neither operand; extents checked by
                        // `strided_gemm` in debug builds.
                        unsafe {
                            strided_gemm(
                                cout,
                                k,
                                tn,
                                Strided { ptr: dw.as_mut_ptr(), cs: 1, rs: k as isize },
                                !first,
                                Strided { ptr: gtile.as_ptr(), cs: 1, rs: tn as isize },
                                Strided { ptr: col.as_ptr(), cs: tn as isize, rs: 1 },
                                Extents { dst: (dw.as_ptr(), dw.len()), lhs: (gtile.as_ptr(), gtile.len()), rhs: (col.as_ptr(), col.len()) },
                                gemm::Parallelism::None,
                            )
                        };
                        first = false;
                    }
                }
                (dw, db)
            })
            .collect();
        let dw = need_w.then(|| {
            let mut acc = vec![T::ZERO; cout * k];
            for (p, _) in &partials {
                for (a, &v) in acc.iter_mut().zip(p) {
                    *a = *a + v;
                }
            }
            T::tensor(acc, Shape::new([cout, cin, 3, 3]))
        });
        let db = need_b.then(|| {
            let mut acc = vec![0f64; cout];
            for (_, p) in &partials {
                for (a, &v) in acc.iter_mut().zip(p) {
                    *a += v;
                }
            }
            T::tensor(acc.into_iter().map(T::of).collect(), Shape::new([cout]))
        });
        (dw, db)
    } else {
        (None, None)
    };
    (dx, dw, db)
}
