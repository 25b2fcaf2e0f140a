//! The Omniglot one-shot loader on the real `all_runs.zip`.

use std::path::PathBuf;

use margin_data::DataError;
use margin_data::omniglot::{OmniglotOneShot, ink};
use margin_eval::{Distance, Embeddings, one_shot_accuracy};

fn zip_path() -> PathBuf {
    // The repository's shared data folder sits next to the checkout.
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/omniglot/all_runs.zip");
    assert!(p.exists(), "missing test data {}", p.display());
    p
}

#[test]
fn loads_the_benchmark_and_scores_embeddings() {
    let b = OmniglotOneShot::load(zip_path()).unwrap();
    assert_eq!(b.images.len(), 800);
    assert_eq!(b.runs.len(), 20);
    for r in &b.runs {
        assert_eq!(
            (r.training.len(), r.test.len(), r.answers.len()),
            (20, 20, 20)
        );
        let mut a = r.answers.clone();
        a.sort_unstable();
        assert_eq!(
            a,
            (0..20).collect::<Vec<_>>(),
            "each training class is the answer once"
        );
    }
    let first = &b.runs[0];
    assert_eq!(first.name, "run01");
    assert_eq!(b.images[first.test[0]].path, "run01/test/item01.png");
    // run01/class_labels.txt: item01 → class08, item02 → class09, item03 → class02.
    assert_eq!(&first.answers[..3], &[7, 8, 1]);
    assert_eq!(
        b.images[first.training[7]].path,
        "run01/training/class08.png"
    );
    let img = &b.images[0];
    assert_eq!((img.width, img.height), (105, 105));
    assert!(
        b.images
            .iter()
            .all(|i| i.grey.iter().all(|&g| g == 0.0 || g == 1.0)),
        "every pixel is black or white: the former `grey >= 128` ink rule equals 1 - grey here"
    );
    // The one ink rule: 1 − grey, so black → 1 (ink) and white → 0 (paper).
    assert_eq!((ink(0.0), ink(1.0)), (1.0, 0.0));
    let dim = 105 * 105;
    let ink: Vec<f32> = b.images.iter().flat_map(|i| i.grey.iter().map(|&g| ink(g))).collect();
    // At the native size, the training preprocessing (area resize to 105) is the identity.
    assert_eq!(b.ink_images(105), ink);
    let ink_fraction = ink.iter().sum::<f32>() / ink.len() as f32;
    assert!(
        ink_fraction > 0.02 && ink_fraction < 0.2,
        "ink fraction {ink_fraction}"
    );

    // Raw-pixel nearest neighbour: well above chance (5%).
    let e = Embeddings::new("pixels", &ink, dim).unwrap();
    let r = one_shot_accuracy(&b.runs, &e, Distance::Euclidean).unwrap();
    assert_eq!(r.trials, 400);
    eprintln!(
        "raw-pixel 1-NN one-shot accuracy: {:.3} (cosine below)",
        r.accuracy
    );
    assert!(r.accuracy > 0.15 && r.accuracy < 0.9, "{r:?}");
    let rc = one_shot_accuracy(&b.runs, &e, Distance::Cosine).unwrap();
    eprintln!("raw-pixel cosine: {:.3}", rc.accuracy);
    // 87/400 = 21.7 %, the "1-nearest neighbor" baseline Koch, Zemel & Salakhutdinov (2015,
    // "Siamese Neural Networks for One-shot Image Recognition", Table 2) report for this benchmark.
    assert_eq!(rc.correct, 87);

    // An embedding that maps each test image onto its answer's embedding scores 100 %;
    // one that maps it onto the next class scores 0 %.
    for (shift, want) in [(0usize, 1.0), (1, 0.0)] {
        let mut emb = vec![0.0f64; 800 * 2];
        for r in &b.runs {
            for (p, &t) in r.training.iter().enumerate() {
                emb[t * 2] = p as f64;
                emb[t * 2 + 1] = 1.0;
            }
            for (&t, &a) in r.test.iter().zip(&r.answers) {
                emb[t * 2] = ((a + shift) % 20) as f64;
                emb[t * 2 + 1] = 1.0;
            }
        }
        let e = Embeddings::new("synthetic", &emb, 2).unwrap();
        let r = one_shot_accuracy(&b.runs, &e, Distance::Euclidean).unwrap();
        assert_eq!(r.accuracy, want);
        assert_eq!(r.per_run_accuracy.len(), 20);
    }
    // Wrong number of rows is a typed error naming the input.
    let e = Embeddings::new("short.npy", &ink[..dim * 10], dim).unwrap();
    let err = one_shot_accuracy(&b.runs, &e, Distance::Euclidean).unwrap_err();
    assert!(err.to_string().contains("short.npy"), "{err}");
}

#[test]
fn missing_or_broken_files_are_typed_errors() {
    assert!(matches!(
        OmniglotOneShot::load(std::path::Path::new("/nonexistent/all_runs.zip")),
        Err(DataError::Io { .. })
    ));
    let tmp =
        std::env::temp_dir().join(format!("margin-eval-not-a-zip-{}.zip", std::process::id()));
    std::fs::write(&tmp, b"not a zip").unwrap();
    let r = OmniglotOneShot::load(&tmp);
    std::fs::remove_file(&tmp).ok();
    assert!(matches!(r, Err(DataError::Format { .. })));
}

/// The bundled `data/omniglot` halves load through the size-checked `.npz` reader (each
/// member is ~212 MB of `bool`s from ~3 MB: within deflate's ratio and the member cap).
#[test]
fn bundled_npz_halves_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/omniglot");
    let o = margin_data::load_omniglot(&dir, 28).unwrap();
    assert_eq!((o.background.len(), o.background.classes().len()), (964 * 20, 964));
    assert_eq!((o.evaluation.len(), o.evaluation.classes().len()), (659 * 20, 659));
    assert_eq!(o.background.sample_shape, vec![1, 28, 28]);
    let e = margin_data::load_omniglot(&dir, 100_000).unwrap_err().to_string();
    assert!(e.contains("image size = 100000"), "{e}");
}
