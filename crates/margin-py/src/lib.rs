//! # margin-py — margin from Python (module `margin`)
//!
//! The native half (`margin._margin`) of the `margin` Python package: thin pyo3 functions
//! over margin-eval (evaluation, exact kNN, the retrieval core of the drop-in
//! `AccuracyCalculator`), margin-search (`Index`), margin (the fused losses, and the losses with class parameters) and margin-models (`Model`: embed with a
//! run folder's card, or texts with a sentence-transformers folder). The Python
//! half (`python/margin/`) gives the public API, converts inputs (anything with
//! `__array__`, e.g. torch CPU tensors, without importing torch) and holds the type stubs.
//!
//! Design:
//! - **No copy in, no copy out.** C-contiguous float32/float64 arrays are borrowed as
//!   slices ([`arrays`]); results are Rust vectors handed to numpy as the array's buffer
//!   (`IntoPyArray`). The losses are the exception: Burn owns its tensors, so the batch is
//!   copied once into one (B × d, small next to the O(B²) work).
//! - **The GIL is released** around every computation (`Python::detach`), so Python threads
//!   run beside a long evaluation or search.
//! - **Errors are margin's.** Every library error is raised as `ValueError` (I/O as
//!   `OSError`) with the library's message, which names the input, row and shape; wrong
//!   types are `TypeError`. Nothing panics on user data.
//! - **Linking.** pyo3's `extension-module` feature (no libpython link) is enabled by
//!   maturin only (`pyproject.toml`), so `cargo test --workspace` still links this crate.
//!   maturin builds with the workspace's `checked` profile and this crate pins the features
//!   of a few crates below Burn (see `Cargo.toml`), so the wheel reuses CI's Burn build.
//!
//! The Python API: `evaluate` (the `margin eval` report), the drop-in `AccuracyCalculator`
//! (PML's semantics over margin-eval's kNN), `knn`, `Index` (margin-search; pickles as its file's
//! bytes), `losses`/`miners` (the fused CPU losses → value, gradient, stats; the losses with class
//! parameters hold them in `.params`, `value_and_grads` → value, ∂/∂embeddings, ∂/∂params, stats,
//! `seed=` a run's draw: `param_losses.rs`), `Model.load(run_dir).embed(array | image paths |
//! texts)` (`margin embed` with the card's preprocessing; pickles by path). Built by maturin, abi3
//! ≥ 3.9: `pip install` builds `release` (pyproject), CI `checked` (ci.sh's command line, which
//! also checks the wheel reuses the workspace's Burn build).

use pyo3::prelude::*;

pub mod arrays;
pub mod errors;
pub mod evaluate;
pub mod losses;
pub mod model;
pub mod param_losses;
pub mod pml;
pub mod search;

#[pymodule]
fn _margin(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate_json, m)?)?;
    m.add_function(wrap_pyfunction!(pml::pml_retrieval, m)?)?;
    m.add_function(wrap_pyfunction!(pml::nmi_ami, m)?)?;
    m.add_function(wrap_pyfunction!(search::knn, m)?)?;
    m.add_class::<search::PyIndex>()?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(losses::loss, m)?)?;
    m.add_function(wrap_pyfunction!(losses::miner_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(param_losses::param_loss, m)?)?;
    m.add_function(wrap_pyfunction!(param_losses::param_init, m)?)?;
    Ok(())
}
