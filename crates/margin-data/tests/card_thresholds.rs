//! Model card version 3 carries calibrated thresholds; version-2 cards (none) still read.

use margin_data::ModelCard;
use margin_data::card::{MODEL_CARD_VERSION, Preprocessing};
use margin_data::thresholds::{DedupRate, DedupThresholds, FarThreshold, HeldOut, HeldOutKind, Thresholds};

#[test]
fn version_2_cards_read_without_thresholds_and_version_3_round_trips() {
    let v2 = br#"{"version": 2, "model": {"kind": "mlp", "hidden": [8], "embedding_dim": 4, "normalize": false},
        "sample_shape": [3], "normalize_output": true, "preprocessing": {"kind": "features", "dim": 3, "scale": 1.0}}"#;
    let card = ModelCard::from_bytes(v2, "model.json").unwrap();
    assert_eq!((card.version, card.thresholds.as_ref()), (2, None));
    assert!(MODEL_CARD_VERSION >= 3);
    let mut card = ModelCard::new(card.model, Preprocessing::Features { dim: 3, scale: 1.0 }, true);
    card.thresholds = Some(Thresholds {
        metric: "euclidean".into(),
        source: "validation classes: 2 classes, 10 samples".into(),
        n_genuine: 20,
        n_impostor: 25,
        eer: 0.1,
        eer_threshold: 0.5,
        far: vec![FarThreshold { far_target: 1e-2, threshold: None, far: None, tar: None, note: Some("not estimable: 25 impostor pairs, 1000 needed".into()) }],
        held_out: Some(HeldOut { kind: HeldOutKind::CalibrationShare, classes: vec!["a".into(), "b".into()], samples: 10, rule: "seeded".into() }),
    });
    card.dedup = Some(DedupThresholds {
        metric: "euclidean".into(),
        source: "calibration share".into(),
        copies: "jpeg".into(),
        n_duplicate: 10,
        n_different: 45,
        rates: vec![DedupRate { target_rate: 1e-2, threshold: Some(0.1), rate: Some(0.0), recall: Some(0.9), note: None }],
        default_rate: Some(1e-2),
    });
    assert_eq!(card.dedup.as_ref().unwrap().default_entry().unwrap().threshold, Some(0.1));
    let json = serde_json::to_vec_pretty(&card).unwrap();
    let back = ModelCard::from_bytes(&json, "model.json").unwrap();
    assert_eq!(back, card);
    assert!(!String::from_utf8(serde_json::to_vec(&ModelCard { thresholds: None, dedup: None, ..card }).unwrap()).unwrap().contains("thresholds"));
}
