//! One module per subcommand.

pub mod eval;
pub mod loss;
mod loss_miner;
pub mod embed;
pub mod embed_text;
pub mod train;
mod progress;
