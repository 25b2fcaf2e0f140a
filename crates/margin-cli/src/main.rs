//! `margin`: train, evaluate and inspect metric-learning embeddings.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only parses
//! the command line and dispatches.
//!
//! Modules: `cmd/loss_param.rs` (`margin loss` for the losses with class parameters — flags →
//! margin-train's `LossSpec` → `ParamLoss`, parameters from `--params FILE` or a run's draw by
//! `--seed`); `report/gallery.rs` (the HTML report: seeded test queries with top-5 neighbour
//! thumbnails as PNG data URIs, most confused class pairs, from margin-train's `gallery` — one
//! k=5 kNN on the test embeddings); `cmd/index.rs`, `search.rs`, `verify.rs`, `dedup.rs`
//! (+ `dedup_html.rs`) over margin-search; `model_input.rs` (`--model RUN --input` through
//! `margin embed`'s path — images, features, or texts with a sentence-transformers folder — and
//! the model fingerprint); `threshold.rs` (which threshold and its source); `flags.rs` (the clap
//! value parsers, calling margin-linalg's `check` validators).

use clap::{Parser, Subcommand};

mod cmd;
mod flags;
mod report;
mod npy;

/// Deep metric learning: train embeddings, measure how they retrieve and verify.
#[derive(Parser, Debug)]
#[command(name = "margin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute a loss (and optionally its gradient) on a saved batch of embeddings.
    Loss(cmd::loss::LossArgs),
    /// Evaluate embeddings: retrieval, clustering, verification and few-shot metrics.
    Eval(cmd::eval::EvalArgs),
    /// Train an embedding model end to end (default: ConvNet-4 on the bundled Omniglot).
    Train(cmd::train::TrainArgs),
    /// Short runs of a configuration over a grid of values (margins, learning rates…),
    /// validated on held-out training classes, with active-fraction verdicts and best.toml.
    Sweep(cmd::sweep::SweepArgs),
    /// Embed new data with a trained model.
    Embed(cmd::embed::EmbedArgs),
    /// Build, extend, shrink or describe a search index of embeddings.
    Index(cmd::index::IndexArgs),
    /// The k nearest items of an index for each query.
    Search(cmd::search::SearchArgs),
    /// Same or different: the distance of two items and the decision at a threshold.
    Verify(cmd::verify::VerifyArgs),
    /// Group near-duplicates (groups.json and an HTML page).
    Dedup(cmd::dedup::DedupArgs),
}

fn main() -> anyhow::Result<()> {
    margin::alloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Loss(args) => cmd::loss::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Sweep(args) => cmd::sweep::run(args),
        Command::Embed(args) => cmd::embed::run(args),
        Command::Index(args) => cmd::index::run(args),
        Command::Search(args) => cmd::search::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Dedup(args) => cmd::dedup::run(args),
    }
}
