//! One module per subcommand.

pub mod eval;
pub mod loss;
mod loss_miner;
pub mod embed;
mod embed_backbone;
pub mod embed_text;
pub mod train;
mod progress;
