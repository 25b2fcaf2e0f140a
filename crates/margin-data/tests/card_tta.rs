//! Model card version 4 records test-time augmentation (`tta`); cards without it (older
//! versions included) read as one view, and a card whose views do not fit its samples is
//! refused naming the field.

use margin_data::ModelCard;
use margin_data::card::{MODEL_CARD_VERSION, Preprocessing};
use margin_data::tta::TestTimeAugment;

const V3: &[u8] = br#"{"version": 3, "model": {"kind": "convnet4", "width": 8, "embedding_dim": 4, "normalize": false},
    "sample_shape": [1, 28, 28], "normalize_output": true, "preprocessing": {"kind": "grey_image", "size": 28, "invert": true}}"#;

#[test]
fn older_cards_read_as_one_view() {
    let card = ModelCard::from_bytes(V3, "model.json").unwrap();
    assert_eq!((card.version, card.tta), (3, TestTimeAugment::None));
}

#[test]
fn version_4_round_trips_its_views_and_leaves_one_view_out() {
    assert_eq!(MODEL_CARD_VERSION, 4);
    let old = ModelCard::from_bytes(V3, "model.json").unwrap();
    let mut card = ModelCard::new(old.model, Preprocessing::GreyImage { size: 28, invert: true }, true);
    assert!(!String::from_utf8(serde_json::to_vec(&card).unwrap()).unwrap().contains("tta"));
    card.tta = TestTimeAugment::Shifts { pixels: 1 };
    let json = serde_json::to_vec(&card).unwrap();
    assert!(String::from_utf8(json.clone()).unwrap().contains(r#""tta":{"kind":"shifts","pixels":1}"#));
    assert_eq!(ModelCard::from_bytes(&json, "model.json").unwrap(), card);
}

#[test]
fn views_that_do_not_fit_the_samples_are_refused() {
    // 8 px is allowed in general, but not on 16 × 16 samples.
    let text = String::from_utf8(V3.to_vec()).unwrap().replace(r#""version": 3,"#, r#""version": 4, "tta": {"kind": "shifts", "pixels": 8},"#).replace("28", "16");
    let e = ModelCard::from_bytes(text.as_bytes(), "run/model.json").unwrap_err().to_string();
    assert!(e.contains("run/model.json") && e.contains("eval.tta") && e.contains("half the image"), "{e}");
}
