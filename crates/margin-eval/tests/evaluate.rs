//! The one-call evaluation and its JSON report.

mod common;

use margin_eval::{
    ClusteringConfig, Distance, Embeddings, EvalConfig, EvalReport, FewShotConfig, Labelled,
    RetrievalConfig, VerificationConfig, evaluate,
};

#[test]
fn everything_on_clustered_data_round_trips_through_json() {
    let d = 8;
    let (data, labels) = common::clustered(12, 25, d, 0.6, 4);
    let data32: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    let s = Labelled::new(
        Embeddings::new("E.npy", &data32, d).unwrap(),
        "L.npy",
        &labels,
    )
    .unwrap();
    let cfg = EvalConfig {
        few_shot: Some(FewShotConfig {
            episodes: 200,
            ..Default::default()
        }),
        ..Default::default()
    };
    let r = evaluate(&s, None, &cfg).unwrap();
    assert_eq!(
        (
            r.n_queries,
            r.n_references,
            r.dim,
            r.n_query_classes,
            r.largest_query_class
        ),
        (300, 300, 8, 12, 25)
    );
    assert_eq!(r.element_type, "f32");
    assert_eq!(r.retrieval.k, 24);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let c = r.clustering.as_ref().unwrap();
    let v = r.verification.as_ref().unwrap();
    let f = r.few_shot.as_ref().unwrap();
    // Non-trivial but well above chance everywhere.
    for (name, x) in [
        ("map@r", r.retrieval.map_at_r),
        ("p@1", r.retrieval.precision_at_1),
        ("nmi", c.nmi),
        ("ami", c.ami),
        ("auc", v.metrics.auc),
        ("few-shot", f.accuracy),
    ] {
        assert!(x > 0.3 && x <= 1.0, "{name} = {x}");
    }
    assert!(v.exhaustive && v.metrics.n_genuine == 12 * 300);
    let json = serde_json::to_string(&r).unwrap();
    let back: EvalReport = serde_json::from_str(&json).unwrap();
    // serde_json's default float parsing may differ in the last bit; compare structure and values.
    assert_eq!(
        (back.retrieval.k, back.skipped.len(), back.n_queries),
        (r.retrieval.k, 0, 300)
    );
    assert!((back.retrieval.map_at_r - r.retrieval.map_at_r).abs() < 1e-12);
    let bv = back.verification.as_ref().unwrap();
    assert_eq!(bv.metrics.roc.len(), v.metrics.roc.len());
    assert_eq!(bv.histogram.genuine, v.histogram.genuine);
    assert_eq!(bv.metrics.tar_at_far.len(), 4);
    assert!(
        json.contains("\"map_at_r\"") && json.contains("\"histogram\"") && json.contains("\"roc\"")
    );
}

#[test]
fn unsupported_sections_are_skipped_not_fatal() {
    let d = 3;
    let (data, labels) = common::clustered(3, 4, d, 0.1, 4);
    let s = Labelled::new(Embeddings::new("E", &data, d).unwrap(), "L", &labels).unwrap();
    let r = evaluate(&s, None, &EvalConfig::default()).unwrap();
    assert!(r.few_shot.is_none());
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].section, "few_shot");
    let cfg = EvalConfig {
        distance: Distance::Cosine,
        retrieval: RetrievalConfig {
            k: Some(2),
            recall_ks: vec![1],
            mrr: false,
        },
        clustering: None,
        verification: Some(VerificationConfig {
            max_pairs: 10,
            ..Default::default()
        }),
        few_shot: None,
    };
    let r = evaluate(&s, Some(&s), &cfg).unwrap();
    assert!(
        r.clustering.is_none() && r.retrieval.mrr.is_none() && !r.verification.unwrap().exhaustive
    );
    let _ = ClusteringConfig::default();
}

#[test]
fn evaluate_slices_names_its_inputs() {
    let data = [0.0f32, 1.0, 5.0, 6.0];
    let e = margin_eval::evaluate_slices(&data, 2, &[1, 1, 2], &EvalConfig::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "labels has 3 labels but embeddings has 2 rows"
    );
    let r = margin_eval::evaluate_slices(&data, 1, &[1, 1, 2, 2], &EvalConfig::default()).unwrap();
    assert_eq!(r.retrieval.map_at_r, 1.0);
}
