//! Finding the weights that make a model's output non-finite. `margin embed` and
//! evaluation refuse non-finite embeddings; when a model's own parameters hold NaN or
//! infinity (a run that diverged before it was saved, a corrupted file) the error names
//! the parameter, so the user knows it is the model, not the data.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::EmbeddingNet;

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
