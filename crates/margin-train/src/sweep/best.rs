//! The best run of a sweep: the highest validation MAP@R among the runs that finished; ties
//! broken by P@1, then by grid order (the earlier point). A diverged run is never best.
//! `best.toml` is the *original* configuration text with the best point's values set
//! ([`super::BaseConfig::text_with`]): its own epochs and split, comments kept — not the
//! sweep's `--epochs` nor its validation hold-out.

use super::record::RunRecord;

/// The best of `records` (see the module docs); `None` when no run finished.
pub fn best(records: &[RunRecord]) -> Option<&RunRecord> {
    records.iter().filter_map(|r| r.metrics.map(|m| (r, m))).max_by(|(a, ma), (b, mb)| {
        ma.map_at_r
            .total_cmp(&mb.map_at_r)
            .then(ma.precision_at_1.total_cmp(&mb.precision_at_1))
            // Earlier is better: the later index compares as smaller.
            .then(b.index.cmp(&a.index))
    }).map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::super::record::*;
    use super::super::verdict::{Diagnosis, Verdict};
    use super::*;

    fn rec(index: usize, m: Option<(f64, f64)>) -> RunRecord {
        RunRecord {
            version: RECORD_VERSION,
            index,
            id: format!("{index:012}"),
            params: vec![],
            status: if m.is_some() { RunStatus::Finished } else { RunStatus::Diverged { error: "nan".into() } },
            metrics: m.map(|(map_at_r, precision_at_1)| ValMetrics { map_at_r, precision_at_1, r_precision: 0.0, auc: 0.5, eer: 0.5 }),
            validation: ValidationSplit { source: ValidationSource::HeldOut, classes: vec![], samples: 0, train_classes: 0 },
            loss: "triplet".into(),
            hinge: true,
            diagnosis: Diagnosis { verdict: Verdict::Ok, late_active_fraction: None, loss_drop: None },
            epochs: vec![],
            steps: StepCurves::default(),
            wall_seconds: 0.0,
        }
    }

    #[test]
    fn highest_map_then_p1_then_earliest() {
        let idx = |rs: &[RunRecord]| best(rs).map(|r| r.index);
        assert_eq!(idx(&[rec(0, Some((0.5, 0.9))), rec(1, Some((0.6, 0.1))), rec(2, Some((0.55, 1.0)))]), Some(1));
        assert_eq!(idx(&[rec(0, Some((0.6, 0.8))), rec(1, Some((0.6, 0.9))), rec(2, Some((0.6, 0.85)))]), Some(1));
        assert_eq!(idx(&[rec(0, Some((0.6, 0.9))), rec(1, Some((0.6, 0.9))), rec(2, Some((0.6, 0.9)))]), Some(0));
        // A diverged run is never best, even first.
        assert_eq!(idx(&[rec(0, None), rec(1, Some((0.1, 0.1)))]), Some(1));
        assert_eq!(idx(&[rec(0, None)]), None);
        assert_eq!(idx(&[]), None);
    }
}
