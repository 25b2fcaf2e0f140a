//! The per-step learning rate of transformer fine-tuning: linear warm-up, then a linear or
//! cosine decay that would reach `min_lr` one step after the last (Hugging Face's
//! `get_linear_schedule_with_warmup` / `get_cosine_schedule_with_warmup`, the schedules
//! sentence-transformers trains with).
//!
//! One difference, on purpose: warm-up step `s` (0-based) uses `lr · (s + 1) / warmup`,
//! so the first update is not wasted at a learning rate of exactly 0 (Hugging Face's
//! first step uses `lr · 0 / warmup`); the last warm-up step reaches `lr`.

use serde::{Deserialize, Serialize};

/// After the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    /// Stay at `lr`.
    Constant,
    /// Linearly from `lr` towards `min_lr` (reached one step after the last).
    Linear {
        /// The final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Half a cosine from `lr` towards `min_lr` (reached one step after the last).
    Cosine {
        /// The final learning rate.
        #[serde(default)]
        min_lr: f64,
    },
}

impl Default for Decay {
    fn default() -> Self {
        Decay::Linear { min_lr: 0.0 }
    }
}

/// Warm-up then decay, evaluated per optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupDecay {
    /// Steps of linear warm-up (0: none). With `warmup_fraction`, the larger of the two.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Warm-up as a fraction of the run's steps (sentence-transformers' `warmup_ratio`; 0.1 is usual).
    #[serde(default)]
    pub warmup_fraction: f64,
    /// The decay after the warm-up.
    #[serde(default)]
    pub decay: Decay,
}

impl WarmupDecay {
    /// Warm-up steps of a run of `total` steps.
    pub fn warmup(&self, total: usize) -> usize {
        let from_fraction = (self.warmup_fraction * total as f64).round() as usize;
        self.warmup_steps.max(from_fraction).min(total)
    }

    /// The learning rate of step `step` (0-based) of `total` for the base rate `lr`.
    pub fn lr(&self, lr: f64, step: usize, total: usize) -> f64 {
        let warmup = self.warmup(total);
        if step < warmup {
            return lr * (step + 1) as f64 / warmup as f64;
        }
        let span = total.saturating_sub(warmup);
        let t = if span == 0 { 0.0 } else { ((step - warmup) as f64 / span as f64).min(1.0) };
        match self.decay {
            Decay::Constant => lr,
            Decay::Linear { min_lr } => min_lr + (lr - min_lr) * (1.0 - t),
            Decay::Cosine { min_lr } => min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * t).cos()),
        }
    }

    /// Checks the fields (named as the TOML spells them) for base rate `lr`.
    pub fn validate(&self, lr: f64) -> Result<(), margin::MarginError> {
        margin::check::fraction("train.schedule.warmup_fraction", self.warmup_fraction)?;
        if let Decay::Linear { min_lr } | Decay::Cosine { min_lr } = self.decay
            && !(min_lr.is_finite() && (0.0..=lr).contains(&min_lr))
        {
            return Err(margin::MarginError::InvalidConfig { field: "train.schedule.decay.min_lr", value: min_lr.to_string(), reason: "must be in [0, train.lr]" });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_rises_to_lr_then_linear_decay_as_hugging_face() {
        let s = WarmupDecay { warmup_steps: 4, warmup_fraction: 0.0, decay: Decay::Linear { min_lr: 0.0 } };
        let lrs: Vec<f64> = (0..10).map(|i| s.lr(1.0, i, 10)).collect();
        assert_eq!(&lrs[..4], &[0.25, 0.5, 0.75, 1.0]);
        // Hugging Face: (total − s) / (total − warmup) for s ≥ warmup; the last step is not wasted at 0.
        for (i, lr) in lrs.iter().enumerate().skip(4) {
            assert!((lr - (10 - i) as f64 / 6.0).abs() < 1e-12, "step {i}: {lr}");
        }
        assert!(lrs[9] > 0.0);
    }

    #[test]
    fn cosine_decay_is_half_a_cosine_and_fraction_warmup_rounds() {
        let s = WarmupDecay { warmup_steps: 0, warmup_fraction: 0.1, decay: Decay::Cosine { min_lr: 0.1 } };
        assert_eq!(s.warmup(25), 3);
        let at = |step: usize| 0.1 + 0.5 * 1.9 * (1.0 + (std::f64::consts::PI * ((step - 3) as f64 / 22.0)).cos());
        for step in [3, 10, 14, 24] {
            assert!((s.lr(2.0, step, 25) - at(step)).abs() < 1e-12, "step {step}");
        }
        assert_eq!(s.lr(2.0, 3, 25), 2.0);
        assert!(s.lr(2.0, 24, 25) > 0.1);
        assert_eq!(WarmupDecay { decay: Decay::Constant, ..Default::default() }.lr(0.5, 7, 9), 0.5);
    }

    #[test]
    fn bad_fields_are_named() {
        let s = WarmupDecay { warmup_steps: 0, warmup_fraction: 1.5, decay: Decay::Constant };
        assert!(s.validate(1.0).unwrap_err().to_string().contains("train.schedule.warmup_fraction"));
        let s = WarmupDecay { decay: Decay::Cosine { min_lr: 2.0 }, ..Default::default() };
        assert!(s.validate(1.0).unwrap_err().to_string().contains("min_lr"));
    }
}
