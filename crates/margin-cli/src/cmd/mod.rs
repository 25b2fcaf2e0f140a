//! One module per subcommand.

pub mod eval;
pub mod loss;
pub mod embed;
pub mod train;
