//! Few-shot episodes.

mod common;

use margin_eval::{Distance, Embeddings, EvalError, FewShotConfig, Labelled, few_shot};

#[test]
fn separated_classes_give_full_accuracy() {
    let d = 8;
    let (data, labels) = common::clustered(10, 20, d, 0.01, 1);
    let s = Labelled::new(Embeddings::new("E", &data, d).unwrap(), "L", &labels).unwrap();
    for dist in Distance::ALL {
        let cfg = FewShotConfig {
            n_way: 5,
            k_shot: 1,
            n_query: 5,
            episodes: 50,
            seed: 3,
        };
        let r = few_shot(&s, dist, &cfg).unwrap();
        if dist == Distance::Dot {
            // The inner product is no metric: a tight cluster need not be its own best match.
            assert!(r.accuracy > 0.5 && r.accuracy < 1.0, "{r:?}");
        } else {
            assert_eq!(
                (r.accuracy, r.ci95, r.eligible_classes),
                (1.0, 0.0, 10),
                "{dist}"
            );
        }
    }
}

#[test]
fn noise_gives_chance_and_is_seeded() {
    let d = 16;
    let data = common::random_matrix(400, d, 8);
    let labels: Vec<i64> = (0..400).map(|i| i % 20).collect();
    let s = Labelled::new(Embeddings::new("E", &data, d).unwrap(), "L", &labels).unwrap();
    let cfg = FewShotConfig {
        n_way: 5,
        k_shot: 3,
        n_query: 5,
        episodes: 400,
        seed: 11,
    };
    let r = few_shot(&s, Distance::Euclidean, &cfg).unwrap();
    assert!((r.accuracy - 0.2).abs() < 3.0 * r.ci95 + 0.01, "{r:?}");
    assert!(r.ci95 > 0.0 && r.ci95 < 0.02);
    assert_eq!(r, few_shot(&s, Distance::Euclidean, &cfg).unwrap());
    let other = few_shot(
        &s,
        Distance::Euclidean,
        &FewShotConfig {
            seed: 12,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert_ne!(r.accuracy, other.accuracy);
}

#[test]
fn not_enough_classes() {
    let d = 2;
    let (data, labels) = common::clustered(3, 4, d, 0.1, 1);
    let s = Labelled::new(
        Embeddings::new("E", &data, d).unwrap(),
        "labels.npy",
        &labels,
    )
    .unwrap();
    let e = few_shot(
        &s,
        Distance::Euclidean,
        &FewShotConfig {
            n_way: 5,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(e, EvalError::NotEnoughData { .. }) && e.to_string().contains("labels.npy"),
        "{e}"
    );
    let e = few_shot(
        &s,
        Distance::Euclidean,
        &FewShotConfig {
            k_shot: 0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, EvalError::InvalidParameter { .. }));
}
