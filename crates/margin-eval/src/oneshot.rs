//! One-shot trials scored on embeddings: the scorer of the Omniglot 20-way one-shot
//! benchmark (Lake et al. 2015), for any set of runs.
//!
//! A run is a list of support (training) rows, one per class, and test rows, each with the
//! position of its correct support row. A trial is one test row; it is correct when its
//! nearest support row of the same run (ties: the lowest position) is the listed one.
//! Reading the benchmark's files is `margin-data`'s job (`margin_data::omniglot`).

use serde::{Deserialize, Serialize};

use crate::data::Embeddings;
use crate::distance::Distance;
use crate::error::Result;
use margin_linalg::Real;

/// One run, as row indices into the embeddings.
#[derive(Clone, Debug, PartialEq)]
pub struct OneShotRun {
    /// Run name (e.g. `run01`).
    pub name: String,
    /// Support rows, one per class.
    pub training: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// For each test row, the position in `training` of its correct match.
    pub answers: Vec<usize>,
}

/// One-shot accuracy over all trials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OneShotReport {
    /// Distance used.
    pub distance: Distance,
    /// Number of trials (test rows).
    pub trials: usize,
    /// Correct trials.
    pub correct: usize,
    /// `correct / trials`.
    pub accuracy: f64,
    /// `1 − accuracy` (the figure the Science paper reports).
    pub error_rate: f64,
    /// Accuracy of each run.
    pub per_run_accuracy: Vec<f64>,
}

/// Scores `runs` on `embeddings`.
///
/// # Errors
/// [`crate::EvalError::InvalidParameter`] naming the embeddings when a run refers to a row
/// they do not have, or a test row has no answer (or an answer outside its run).
pub fn one_shot_accuracy<T: Real>(runs: &[OneShotRun], embeddings: &Embeddings<T>, distance: Distance) -> Result<OneShotReport> {
    let rows = embeddings.rows();
    for run in runs {
        if let Some(&r) = run.training.iter().chain(&run.test).find(|&&r| r >= rows) {
            return Err(crate::error::invalid(
                embeddings.name(),
                format!("has {rows} rows but run {} refers to row {r}", run.name),
            ));
        }
        if run.answers.len() != run.test.len() || run.answers.iter().any(|&a| a >= run.training.len()) {
            return Err(crate::error::invalid(
                "one-shot runs",
                format!("run {}: {} answers for {} test rows of {} support rows", run.name, run.answers.len(), run.test.len(), run.training.len()),
            ));
        }
    }
    let mut correct = 0;
    let mut per_run = Vec::with_capacity(runs.len());
    for run in runs {
        let mut run_correct = 0;
        for (&t, &answer) in run.test.iter().zip(&run.answers) {
            let mut best: Option<(usize, f64)> = None;
            for (pos, &c) in run.training.iter().enumerate() {
                let v = distance.between(embeddings.row(t), embeddings.row(c));
                let closer = best.is_none_or(|(_, b)| if distance.higher_is_closer() { v > b } else { v < b });
                if closer {
                    best = Some((pos, v));
                }
            }
            run_correct += usize::from(best.map(|b| b.0) == Some(answer));
        }
        per_run.push(run_correct as f64 / run.test.len().max(1) as f64);
        correct += run_correct;
    }
    let trials: usize = runs.iter().map(|r| r.test.len()).sum();
    let accuracy = correct as f64 / trials.max(1) as f64;
    Ok(OneShotReport { distance, trials, correct, accuracy, error_rate: 1.0 - accuracy, per_run_accuracy: per_run })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs of three classes on hand-placed points: the scorer counts a trial correct
    /// exactly when the nearest support row is the answer (ties to the lowest position).
    #[test]
    fn scores_nearest_support_row_against_the_answer() {
        // Rows 0..3: support of run a at x = 0, 10, 20; rows 3..6: its tests at 1, 19, 11.
        // Rows 6..8: support of run b at 0 and 2; row 8: a test at 1 (a tie: position 0 wins).
        let data = [0.0f64, 10.0, 20.0, 1.0, 19.0, 11.0, 0.0, 2.0, 1.0];
        let e = Embeddings::new("E", &data, 1).unwrap();
        let runs = vec![
            OneShotRun { name: "a".into(), training: vec![0, 1, 2], test: vec![3, 4, 5], answers: vec![0, 2, 0] },
            OneShotRun { name: "b".into(), training: vec![6, 7], test: vec![8], answers: vec![1] },
        ];
        let r = one_shot_accuracy(&runs, &e, Distance::Euclidean).unwrap();
        // run a: test 3 → 0 (right), test 4 → 2 (right), test 5 → 1 (answer 0: wrong).
        // run b: tie between positions 0 and 1 → 0 (answer 1: wrong).
        assert_eq!((r.correct, r.trials), (2, 4));
        assert_eq!(r.per_run_accuracy, vec![2.0 / 3.0, 0.0]);
        assert!((r.error_rate - 0.5).abs() < 1e-15);
        // The same points as similarities: the dot product ranks by 1·x, so the largest wins.
        let r = one_shot_accuracy(&runs, &e, Distance::Dot).unwrap();
        assert_eq!(r.correct, 1 + 1, "dot: tests of run a all pick support 20 (one right), run b picks 2 (right)");
    }

    #[test]
    fn refuses_rows_the_embeddings_do_not_have() {
        let data = [0.0f32; 4];
        let e = Embeddings::new("E", &data, 2).unwrap();
        let runs = vec![OneShotRun { name: "r".into(), training: vec![0], test: vec![5], answers: vec![0] }];
        let err = one_shot_accuracy(&runs, &e, Distance::Euclidean).unwrap_err().to_string();
        assert!(err.contains("run r refers to row 5"), "{err}");
    }
}
