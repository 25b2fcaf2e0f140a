//! margin-eval
