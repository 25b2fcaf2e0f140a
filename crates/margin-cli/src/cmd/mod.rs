//! One module per subcommand.

pub mod eval;
pub mod loss;
mod loss_miner;
mod loss_param;
pub mod embed;
mod embed_backbone;
pub mod embed_text;
pub mod train;
pub mod train_text;
mod progress;
pub mod sweep;
mod sweep_progress;
pub mod index;
pub mod search;
pub mod verify;
pub mod dedup;
mod dedup_html;
mod threshold;
mod vectors;
mod model_input;
