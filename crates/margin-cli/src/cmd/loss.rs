//! `margin loss` (under construction in this commit).

/// Arguments of `margin loss`.
#[derive(clap::Args, Debug)]
pub struct LossArgs {}

/// Runs `margin loss`.
pub fn run(_args: LossArgs) -> anyhow::Result<()> {
    anyhow::bail!("margin loss is not built yet")
}
