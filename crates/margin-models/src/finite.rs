//! Finding the weights that make a model's output non-finite. `margin embed`,
//! `margin.Model.embed` and evaluation refuse non-finite embeddings; when a model's own
//! parameters hold NaN or infinity (a run that diverged before it was saved, a corrupted
//! file) the error names the parameter, so the user knows it is the model, not the data
//! ([`check_embeddings`], the one check the CLI and Python share).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use margin_data::Dataset;
use margin_linalg::rows::{RowFault, first_bad_row};

use crate::EmbeddingNet;

/// Why a model's embeddings of some samples are not usable (a NaN or infinity, or a row
/// whose squared norm overflows), naming the cause: the model's weights, the input sample,
/// or an overflow inside the network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbeddingFault {
    /// A parameter of the model is not finite.
    #[error(
        "{}: the model's parameter {} holds {} (at index {}), so its embeddings are not finite; \
         the run that wrote it diverged or the file is damaged: retrain, or use a checkpoint from before",
        weights.display(), bad.path, bad.value, bad.index
    )]
    Parameter {
        /// The weights file the model was loaded from.
        weights: PathBuf,
        /// The parameter.
        bad: BadParameter,
    },
    /// An input sample holds a non-finite value.
    #[error("{input}: sample {row} has the non-finite value {value} at position {position}")]
    Input {
        /// The input (the dataset's name).
        input: String,
        /// The sample.
        row: usize,
        /// The value's position in the flattened sample.
        position: usize,
        /// The value.
        value: f32,
    },
    /// Input and weights are finite, but the network's values overflow.
    #[error(
        "{input}: the embedding of sample {row} is not finite ({fault:?}) although its input and the model's weights are: \
         the values overflow inside the network; check the input's scale against the model card's"
    )]
    Overflow {
        /// The input (the dataset's name).
        input: String,
        /// The sample.
        row: usize,
        /// What is wrong with its embedding.
        fault: RowFault,
    },
}

/// Checks `emb` (`samples.len() × dim`, the embeddings of `samples` by `model`, loaded from
/// `weights`): `Ok` when every row is usable, otherwise why the first bad one is not.
pub fn check_embeddings(emb: &[f32], dim: usize, samples: &Dataset, model: &EmbeddingNet, weights: &Path) -> Result<(), EmbeddingFault> {
    let Some(fault) = first_bad_row(emb, dim.max(1)) else { return Ok(()) };
    let row = match fault {
        RowFault::NonFinite { row, .. } | RowFault::Overflow { row, .. } => row,
    };
    if let Some(bad) = first_non_finite_parameter(model) {
        return Err(EmbeddingFault::Parameter { weights: weights.to_path_buf(), bad });
    }
    let input = samples.name.clone();
    if let Some(position) = samples.sample(row).iter().position(|v| !v.is_finite()) {
        return Err(EmbeddingFault::Input { input, row, position, value: samples.sample(row)[position] });
    }
    Err(EmbeddingFault::Overflow { input, row, fault })
}

/// A parameter holding a non-finite value.
#[derive(Debug, Clone, PartialEq)]
pub struct BadParameter {
    /// Its path in the module (`encoder.blocks.0.conv.weight`).
    pub path: String,
    /// Position of the first bad value in its flattened data.
    pub index: usize,
    /// The value.
    pub value: f64,
}

struct Finder {
    path: Vec<String>,
    found: Option<BadParameter>,
}

impl ModuleVisitor for Finder {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.found.is_some() {
            return;
        }
        let values = param.val().to_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default();
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            let path = if self.path.is_empty() { "(root)".to_string() } else { self.path.join(".") };
            self.found = Some(BadParameter { path, index, value: values[index] });
        }
    }
}

/// The first parameter of `model` (in module order) that holds a NaN or an infinity.
pub fn first_non_finite_parameter(model: &EmbeddingNet) -> Option<BadParameter> {
    let mut f = Finder { path: Vec::new(), found: None };
    model.visit(&mut f);
    f.found
}
