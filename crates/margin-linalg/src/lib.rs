//! # margin-linalg — the host-side numeric core shared by margin's crates
//!
//! The low-level pieces the fused losses' host path (`margin`), the CPU kernels
//! (`margin-models`) and search (`margin-eval`) share, each in exactly one place:
//!
//! - [`Real`]: the sealed element trait (`f32`, `f64`) every host loop is generic over;
//! - [`gemm`]: the one call convention for the `gemm` crate (extent-checked in debug
//!   builds), and its safe row-major form `a · bᵀ`;
//! - [`topk`]: bounded top-k with deterministic tie-breaking (the kNN engine's reservoir);
//! - [`buffer`]: buffers that start uninitialised, their "every element written" contract
//!   checked by a debug assertion;
//! - [`shared`]: `SharedMut`, one buffer written by parallel jobs through a shared pointer,
//!   its bounds and the jobs' disjoint parts checked in debug builds;
//! - [`simd`]: `avx2_dispatch!`, a hot loop compiled a second time with AVX2 + FMA and
//!   chosen at run time;
//! - [`check`]: the rules of numeric options (one validator per concept, for every crate);
//! - [`rows`]: the one rule for usable embedding rows (finite values, representable squared norms);
//! - [`ordered`]: parallel float sums in a fixed order (the same bits on any number of
//!   threads).
//!
//! No Burn: this crate builds in seconds and is used by Burn-free code (search, Python).
//!
//! Why these dependencies: `gemm` is the matrix-multiply crate Burn's `flex` backend
//! already calls (same version and features, so the workspace builds it once); `rayon`
//! is the thread pool Burn and every crate of the workspace share.

#![warn(missing_docs)]

pub mod buffer;
pub mod check;
pub mod gemm;
pub mod ordered;
mod real;
pub mod rows;
pub mod shared;
pub mod simd;
pub mod topk;

pub use real::{Real, dot};

/// The `gemm` crate itself (its `Parallelism` is part of [`gemm::strided_gemm`]'s signature).
pub use ::gemm as gemm_crate;
