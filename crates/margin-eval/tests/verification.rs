//! Verification metrics: AUC = Mann–Whitney U, exact EER, TAR@FAR, accuracy.

mod common;

use margin_eval::{
    Distance, Embeddings, EvalError, Labelled, Polarity, TarAtFar, VerificationConfig, roc_curve,
    verification, verification_metrics,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn mann_whitney(genuine: &[f64], imp: &[f64], pol: Polarity) -> f64 {
    let mut u = 0.0;
    for &g in genuine {
        for &i in imp {
            let (g, i) = if pol == Polarity::HigherIsGenuine {
                (g, i)
            } else {
                (-g, -i)
            };
            u += if g > i {
                1.0
            } else if g == i {
                0.5
            } else {
                0.0
            };
        }
    }
    u / (genuine.len() * imp.len()) as f64
}

#[test]
fn auc_equals_mann_whitney_with_ties() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for trial in 0..20 {
        // Values rounded to 0.1 so that ties are frequent.
        let g: Vec<f64> = (0..40 + trial)
            .map(|_| (rng.random_range(0.0..2.0f64) * 10.0).round() / 10.0)
            .collect();
        let i: Vec<f64> = (0..70)
            .map(|_| (rng.random_range(-0.5..1.5f64) * 10.0).round() / 10.0)
            .collect();
        for pol in [Polarity::HigherIsGenuine, Polarity::LowerIsGenuine] {
            let m = verification_metrics(&g, &i, pol, &VerificationConfig::default()).unwrap();
            assert!(
                close(m.auc, mann_whitney(&g, &i, pol)),
                "trial {trial} {pol:?}: {} vs {}",
                m.auc,
                mann_whitney(&g, &i, pol)
            );
            // Trapezoidal area of the full ROC (from the origin) gives the same number.
            let roc = roc_curve(&g, &i, pol).unwrap();
            let mut area = 0.0;
            let (mut pf, mut pt) = (0.0, 0.0);
            for p in &roc {
                area += (p.far - pf) * (p.tar + pt) / 2.0;
                (pf, pt) = (p.far, p.tar);
            }
            assert!((area - m.auc).abs() < 1e-12);
        }
    }
}

#[test]
fn eer_is_exact_on_a_constructed_distribution() {
    // At threshold 3 (accept ≥ 3): genuine {5,4,3} accepted, {1} rejected → FRR = 1/4;
    // impostors {3.5} accepted → FAR = 1/4. So EER = 0.25 exactly, threshold 3.
    let g = [5.0, 4.0, 3.0, 1.0];
    let i = [3.5, 2.0, 0.0, -1.0];
    let m = verification_metrics(
        &g,
        &i,
        Polarity::HigherIsGenuine,
        &VerificationConfig::default(),
    )
    .unwrap();
    assert_eq!((m.eer, m.eer_threshold), (0.25, 3.0));
    // The same as distances (lower is genuine).
    let gd: Vec<f64> = g.iter().map(|v| -v).collect();
    let id: Vec<f64> = i.iter().map(|v| -v).collect();
    let m = verification_metrics(
        &gd,
        &id,
        Polarity::LowerIsGenuine,
        &VerificationConfig::default(),
    )
    .unwrap();
    assert_eq!((m.eer, m.eer_threshold), (0.25, -3.0));
    // Interpolated case: genuine {2, 0}, impostor {1}: ROC (0,1/2) → (1,1/2) → (1,1);
    // FRR − FAR goes 1/2 → −1/2 between the first two points: EER = 1/2.
    let m = verification_metrics(
        &[2.0, 0.0],
        &[1.0],
        Polarity::HigherIsGenuine,
        &VerificationConfig::default(),
    )
    .unwrap();
    assert!(close(m.eer, 0.5));
    assert_eq!((m.n_genuine, m.n_impostor), (2, 1));
}

#[test]
fn perfect_separation() {
    let g: Vec<f64> = (0..100).map(|x| 10.0 + x as f64).collect();
    let i: Vec<f64> = (0..200_000).map(|x| x as f64 * 1e-5).collect();
    let m = verification_metrics(
        &g,
        &i,
        Polarity::HigherIsGenuine,
        &VerificationConfig::default(),
    )
    .unwrap();
    assert_eq!((m.auc, m.eer, m.best_accuracy), (1.0, 0.0, 1.0));
    assert_eq!(m.best_threshold, Some(10.0));
    for t in &m.tar_at_far {
        assert!(
            matches!(t, TarAtFar::Estimated { tar, .. } if *tar == 1.0),
            "{t:?}"
        );
    }
    assert!(
        m.roc.len() <= 400 && m.roc.first().unwrap().far == 0.0 && m.roc.last().unwrap().far == 1.0
    );
}

#[test]
fn tar_at_far_and_accuracy_by_hand() {
    let g = [0.9, 0.8, 0.7, 0.6];
    let i = [0.85, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3];
    let cfg = VerificationConfig {
        far_targets: vec![0.1, 0.01],
        min_false_accepts: 1.0,
        ..Default::default()
    };
    let m = verification_metrics(&g, &i, Polarity::HigherIsGenuine, &cfg).unwrap();
    // FAR ≤ 0.1 allows the one impostor at 0.85: all four genuine accepted at threshold 0.6.
    assert_eq!(
        m.tar_at_far[0],
        TarAtFar::Estimated {
            far_target: 0.1,
            tar: 1.0,
            far: 0.1,
            threshold: Some(0.6)
        }
    );
    // 10 impostors cannot resolve FAR = 0.01.
    assert_eq!(
        m.tar_at_far[1],
        TarAtFar::NotEstimable {
            far_target: 0.01,
            impostors: 10,
            required: 100
        }
    );
    // Best accuracy: threshold 0.6 → 4 genuine + 9 impostors right out of 14.
    assert!(close(m.best_accuracy, 13.0 / 14.0));
    assert_eq!(m.best_threshold, Some(0.6));
    // Default rule (10 false accepts): FAR 0.1 needs 100 impostors.
    let m = verification_metrics(
        &g,
        &i,
        Polarity::HigherIsGenuine,
        &VerificationConfig::default(),
    )
    .unwrap();
    assert!(
        m.tar_at_far
            .iter()
            .all(|t| matches!(t, TarAtFar::NotEstimable { .. }))
    );
    let json = serde_json::to_string(&m.tar_at_far[0]).unwrap();
    assert!(json.contains("\"status\":\"not-estimable\""), "{json}");
}

#[test]
fn bad_scores_are_typed_errors() {
    let cfg = VerificationConfig::default();
    assert!(matches!(
        verification_metrics(&[], &[1.0], Polarity::HigherIsGenuine, &cfg),
        Err(EvalError::Empty { .. })
    ));
    let e = verification_metrics(&[1.0, f64::NAN], &[1.0], Polarity::HigherIsGenuine, &cfg)
        .unwrap_err();
    assert!(matches!(e, EvalError::NonFinite { row: 1, .. }), "{e}");
    let bad = VerificationConfig {
        far_targets: vec![0.0],
        ..Default::default()
    };
    assert!(matches!(
        verification_metrics(&[1.0], &[0.0], Polarity::HigherIsGenuine, &bad),
        Err(EvalError::InvalidParameter { .. })
    ));
}

#[test]
fn from_labelled_embeddings() {
    let d = 4;
    let (data, labels) = common::clustered(6, 10, d, 0.05, 2);
    let s = Labelled::new(Embeddings::new("E", &data, d).unwrap(), "L", &labels).unwrap();
    let all = verification(&s, Distance::Euclidean, &VerificationConfig::default()).unwrap();
    assert!(all.exhaustive);
    assert_eq!(
        (
            all.metrics.n_genuine,
            all.metrics.n_impostor,
            all.total_pairs
        ),
        (6 * 45, 1770 - 270, 1770)
    );
    assert_eq!(all.metrics.auc, 1.0);
    assert_eq!(all.histogram.genuine.iter().sum::<u64>(), 270);
    assert_eq!(all.histogram.impostor.iter().sum::<u64>(), 1500);
    assert!(all.rule.contains("≤"));
    let cfg = VerificationConfig {
        max_pairs: 500,
        seed: 5,
        ..Default::default()
    };
    let sample = verification(&s, Distance::Dot, &cfg).unwrap();
    assert!(!sample.exhaustive);
    assert_eq!(
        (sample.metrics.n_genuine, sample.metrics.n_impostor),
        (250, 250)
    );
    assert_eq!(sample.metrics.polarity, Polarity::HigherIsGenuine);
    assert_eq!(sample, verification(&s, Distance::Dot, &cfg).unwrap());
    let one: Vec<i64> = vec![3; 60];
    let s1 = Labelled::new(Embeddings::new("E", &data, d).unwrap(), "L1", &one).unwrap();
    assert!(matches!(
        verification(&s1, Distance::Euclidean, &cfg),
        Err(EvalError::NotEnoughData { .. })
    ));
}
