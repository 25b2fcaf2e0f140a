//! The text readers on the real files of `../shared/data` (CLINC150, BANKING77, STS-B):
//! the sizes their SOURCE.md files state, one class table per dataset, and the closed-set
//! leakage check on the standard splits.

use std::path::PathBuf;

use margin_data::Samples;
use margin_data::text::{self, TableFormat, TextColumns};

fn data(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(rel);
    assert!(p.exists(), "{} is needed (../shared next to the repository)", p.display());
    p
}

#[test]
fn clinc150_has_its_published_sizes() {
    let c = text::load_clinc150(&data("clinc150/data_full.json")).unwrap();
    let n = |s: &text::TextSet| s.len();
    assert_eq!((n(&c.train), n(&c.val), n(&c.test)), (15_000, 3_000, 4_500));
    assert_eq!((n(&c.oos_train), n(&c.oos_val), n(&c.oos_test)), (100, 100, 1_000));
    assert_eq!(c.train.classes().len(), 150);
    assert_eq!(c.train.classes(), c.test.classes());
    // The standard split shares two utterances between train and test ("where did you
    // grow up", "what's your designation"): the closed-set check refuses it as it is.
    let e = text::check_no_shared_text(&c.train, &c.test).unwrap_err().to_string();
    assert!(e.contains("2 utterance(s)") && e.contains("where did you grow up"), "{e}");
    let (test, removed) = text::without_shared_text(&c.train, &c.test);
    assert_eq!((removed, test.len()), (2, 4_498));
    text::check_no_shared_text(&c.train, &test).unwrap();
    assert_eq!(c.oos_test.class_name(0), "oos");
}

#[test]
fn banking77_and_sts_b() {
    let cols = TextColumns { text: "text".into(), label: "category".into() };
    let f = TableFormat::Delimited { delimiter: b',', quoting: true };
    let mut train = text::load_labelled(&data("banking77/train.csv"), &f, &cols).unwrap();
    let mut test = text::load_labelled(&data("banking77/test.csv"), &f, &cols).unwrap();
    text::share_classes(&mut [&mut train, &mut test]);
    assert_eq!((train.len(), test.len(), train.classes().len()), (10_003, 3_080, 77));
    let sts = text::load_sts(&data("stsbenchmark/sts-test.csv")).unwrap();
    assert_eq!(sts.scores.len(), 1_379);
    assert_eq!(text::load_sts(&data("stsbenchmark/sts-train.csv")).unwrap().scores.len(), 5_749);
}
