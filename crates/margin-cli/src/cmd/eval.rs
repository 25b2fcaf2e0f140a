//! `margin eval` (under construction in this commit).

/// Arguments of `margin eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {}

/// Runs `margin eval`.
pub fn run(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("margin eval is not built yet")
}
