//! One module per subcommand.

pub mod eval;
pub mod loss;
mod loss_miner;
pub mod embed;
pub mod train;
mod progress;
