//! Which distance threshold a command decides with, and where it came from: `--threshold T`
//! (the user's), or `--far F` (a calibrated threshold of the model card, when the card has
//! one for that false-accept rate). Every command that decides prints the value and its
//! source, so a decision can always be traced to a number and its origin.

use anyhow::{Result, bail};

/// The flags of a decision threshold.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ThresholdArgs {
    /// Decide with this distance threshold (in the metric's unit, smaller is closer: a
    /// pair matches when its distance is at most T).
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = crate::flags::finite, conflicts_with = "far")]
    pub threshold: Option<f64>,
    /// Decide with the model card's threshold calibrated at this false-accept rate
    /// (e.g. 1e-3; needs a card with calibrated thresholds, `--model RUN`).
    #[arg(long, value_name = "F", value_parser = crate::flags::positive)]
    pub far: Option<f64>,
}

/// A threshold in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The distance threshold (a pair matches at `distance <= value`).
    pub value: f32,
    /// Where it came from, in words (`--threshold`, `model card: FAR 1e-3 …`).
    pub source: String,
}

impl Threshold {
    /// Whether a distance matches.
    pub fn matches(&self, distance: f32) -> bool {
        distance <= self.value
    }
}

/// The threshold the flags ask for (`None`: no flag given); `card` supplies `--far`
/// thresholds when the command has a model card.
pub fn resolve(a: &ThresholdArgs, card: Option<&dyn CardThresholds>) -> Result<Option<Threshold>> {
    if let Some(t) = a.threshold {
        return Ok(Some(Threshold { value: t as f32, source: "--threshold".into() }));
    }
    let Some(far) = a.far else { return Ok(None) };
    let Some(card) = card else {
        bail!("--far {far} needs a model card with calibrated thresholds (--model RUN); with precomputed embeddings give --threshold T");
    };
    card.at_far(far).map(Some)
}

/// A source of calibrated thresholds (the model card).
pub trait CardThresholds {
    /// The threshold calibrated at false-accept rate `far`, with its source.
    ///
    /// # Errors
    /// A card without calibrated thresholds, or without one for `far`.
    fn at_far(&self, far: f64) -> Result<Threshold>;
}

/// Requires a threshold: the flags', else `fallback` (e.g. the card's default), else an error.
pub fn required(t: Option<Threshold>, fallback: Option<Threshold>, command: &str) -> Result<Threshold> {
    match t.or(fallback) {
        Some(t) => Ok(t),
        None => bail!("{command} needs a threshold: give --threshold T (a distance) or --far F with a model card that has calibrated thresholds"),
    }
}

/// The calibrated thresholds of a model card, for a command measuring with `metric`.
pub struct Card<'a> {
    /// The run folder (named in the source).
    pub run: &'a std::path::Path,
    /// The card's thresholds (`None`: a card without them).
    pub thresholds: Option<&'a margin_data::thresholds::Thresholds>,
    /// The card's dedup section (`None`: a card without it).
    pub dedup: Option<&'a margin_data::thresholds::DedupThresholds>,
    /// The metric the command decides with.
    pub metric: margin_search::Metric,
}

impl Card<'_> {
    fn get(&self) -> Result<&margin_data::thresholds::Thresholds> {
        let Some(t) = self.thresholds else {
            bail!(
                "{}: the model card has no calibrated thresholds (a card before version 3, or a run without validation classes); give --threshold T",
                self.run.join("model.json").display()
            );
        };
        if t.metric != self.metric.name() {
            bail!("the model card's thresholds are {} distances, but this command measures {}: use --metric {} or give --threshold", t.metric, self.metric.name(), t.metric);
        }
        Ok(t)
    }

    /// The card's near-duplicate threshold (at the strictest estimable false-duplicate
    /// rate), the default of `margin dedup`.
    ///
    /// # Errors
    /// A card without one, or a metric other than the card's.
    pub fn dedup(&self) -> Result<Threshold> {
        let card = self.run.join("model.json");
        let Some(d) = self.dedup else {
            bail!("{}: the model card has no calibrated dedup threshold (a card written before it, or a run without held-out classes); give --threshold T, or --far F for identity-level grouping", card.display());
        };
        if d.metric != self.metric.name() {
            bail!("the model card's dedup threshold is a {} distance, but this command measures {}: use --metric {} or give --threshold", d.metric, self.metric.name(), d.metric);
        }
        let Some(e) = d.default_entry() else {
            let notes: Vec<String> = d.rates.iter().map(|r| format!("{:e}: {}", r.target_rate, r.note.as_deref().unwrap_or("none"))).collect();
            bail!("{}: no dedup threshold is estimable ({}); give --threshold T", card.display(), notes.join("; "));
        };
        Ok(Threshold {
            value: e.threshold.unwrap_or_default() as f32,
            source: format!(
                "model card {}: dedup threshold at false-duplicate rate {:e} (reached {:.2e}, recall of augmented copies {:.4}) on {}, {} duplicate / {} different pairs",
                card.display(),
                e.target_rate,
                e.rate.unwrap_or(f64::NAN),
                e.recall.unwrap_or(f64::NAN),
                d.source,
                d.n_duplicate,
                d.n_different
            ),
        })
    }

    /// The card's EER threshold, when it has thresholds in this metric.
    pub fn eer(&self) -> Option<Threshold> {
        let t = self.get().ok()?;
        Some(Threshold {
            value: t.eer_threshold as f32,
            source: format!("model card {}: EER threshold (EER {:.4}) on {}, {} genuine / {} impostor pairs", self.run.join("model.json").display(), t.eer, t.source, t.n_genuine, t.n_impostor),
        })
    }
}

impl CardThresholds for Card<'_> {
    fn at_far(&self, far: f64) -> Result<Threshold> {
        let t = self.get()?;
        let Some(f) = t.far.iter().find(|f| (f.far_target - far).abs() <= 1e-9 * far) else {
            let have: Vec<String> = t.far.iter().map(|f| format!("{:e}", f.far_target)).collect();
            bail!("--far {far:e}: the model card has thresholds for FAR {} only", have.join(", "));
        };
        match f.threshold {
            Some(v) => Ok(Threshold {
                value: v as f32,
                source: format!(
                    "model card {}: FAR {:e} on {} (reached FAR {:.2e}, TAR {:.4}; {} impostor pairs)",
                    self.run.join("model.json").display(),
                    f.far_target,
                    t.source,
                    f.far.unwrap_or(f64::NAN),
                    f.tar.unwrap_or(f64::NAN),
                    t.n_impostor
                ),
            }),
            None => bail!("--far {far:e}: the model card has no threshold for this rate ({}); give --threshold T", f.note.as_deref().unwrap_or("none recorded")),
        }
    }
}
