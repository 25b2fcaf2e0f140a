//! CLINC150 (Larson et al. 2019), `data_full.json`: 150 in-scope intents split by
//! utterance into `train` / `val` / `test` (100 / 20 / 30 per intent), and out-of-scope
//! queries `oos_train` / `oos_val` / `oos_test`, kept apart as the "unknown" sets.
//!
//! Each split is a JSON array of `[utterance, intent]`. The in-scope sets share one class
//! table (the sorted intents of all three); an out-of-scope set has the one class
//! [`OOS`]. An intent named `oos` inside an in-scope split, or an out-of-scope row with
//! another intent, is an error naming the split and row — the two kinds never mix.

use std::path::Path;

use super::{TextSet, bad, read_bytes, share_classes, utf8};
use crate::DataError;

/// The class name of out-of-scope queries.
pub const OOS: &str = "oos";

/// The six CLINC150 sets.
#[derive(Debug, Clone)]
pub struct Clinc150 {
    /// In-scope training utterances.
    pub train: TextSet,
    /// In-scope validation utterances.
    pub val: TextSet,
    /// In-scope test utterances.
    pub test: TextSet,
    /// Out-of-scope training queries.
    pub oos_train: TextSet,
    /// Out-of-scope validation queries (with `val`: where a rejection threshold is chosen).
    pub oos_val: TextSet,
    /// Out-of-scope test queries.
    pub oos_test: TextSet,
}

/// Reads `data_full.json`.
pub fn load_clinc150(path: &Path) -> Result<Clinc150, DataError> {
    parse_clinc150(&read_bytes(path)?, &path.display().to_string())
}

/// [`load_clinc150`] from bytes. A set's sample id is `file#split:row` (1-based row).
pub fn parse_clinc150(bytes: &[u8], what: &str) -> Result<Clinc150, DataError> {
    let v: serde_json::Value = serde_json::from_str(utf8(bytes, what)?).map_err(|e| bad(what, format!("not JSON: {e}")))?;
    let serde_json::Value::Object(o) = v else {
        return Err(bad(what, "not a JSON object of splits (CLINC150's data_full.json)".into()));
    };
    let split = |name: &str, oos: bool| -> Result<TextSet, DataError> {
        let at = |row: usize, r: String| bad(what, format!("split {name:?}, row {row}: {r}"));
        let rows = o.get(name).and_then(|v| v.as_array()).ok_or_else(|| bad(what, format!("no split {name:?} (an array of [utterance, intent]; splits: {:?})", o.keys().collect::<Vec<_>>())))?;
        let rows = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let row = i + 1;
                let (text, intent) = match r.as_array().map(Vec::as_slice) {
                    Some([serde_json::Value::String(t), serde_json::Value::String(c)]) => (t.clone(), c.trim().to_string()),
                    _ => return Err(at(row, format!("{:.60} is not [utterance, intent]", r.to_string()))),
                };
                if text.trim().is_empty() || intent.is_empty() {
                    return Err(at(row, "empty utterance or intent".into()));
                }
                if (intent == OOS) != oos {
                    return Err(at(row, format!("intent {intent:?} in an {} split", if oos { "out-of-scope" } else { "in-scope" })));
                }
                Ok((row, text, intent))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Err(bad(what, format!("split {name:?} is empty")));
        }
        Ok(TextSet::from_rows(format!("{what}#{name}"), rows))
    };
    let (mut train, mut val, mut test) = (split("train", false)?, split("val", false)?, split("test", false)?);
    share_classes(&mut [&mut train, &mut val, &mut test]);
    Ok(Clinc150 { train, val, test, oos_train: split("oos_train", true)?, oos_val: split("oos_val", true)?, oos_test: split("oos_test", true)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Samples;

    const MINI: &str = r#"{"train": [["hi", "greet"], ["pay it", "bill"]], "val": [["hello", "greet"]],
        "test": [["yo", "greet"]], "oos_train": [["what", "oos"]], "oos_val": [["eh", "oos"]], "oos_test": [["hm", "oos"]]}"#;

    #[test]
    fn splits_share_a_class_table_and_oos_stays_apart() {
        let c = parse_clinc150(MINI.as_bytes(), "d.json").unwrap();
        assert_eq!(c.train.classes(), ["bill", "greet"]);
        assert_eq!(c.test.label(0), c.train.label(0));
        assert_eq!(c.oos_test.class_name(0), OOS);
        assert_eq!(c.val.sample_id(0), "d.json#val:1");
        for (bad_json, words) in [
            (MINI.replace("[\"yo\", \"greet\"]", "[\"yo\", \"oos\"]"), "split \"test\", row 1: intent \"oos\""),
            (MINI.replace("[\"eh\", \"oos\"]", "[\"eh\", \"greet\"]"), "out-of-scope split"),
            (MINI.replace("\"val\"", "\"valid\""), "no split \"val\""),
            (MINI.replace("[\"hi\", \"greet\"]", "[\"hi\"]"), "split \"train\", row 1"),
            (MINI.replace("[\"hi\", \"greet\"]", "[\"\", \"greet\"]"), "empty utterance"),
        ] {
            let e = parse_clinc150(bad_json.as_bytes(), "d.json").unwrap_err().to_string();
            assert!(e.contains("d.json") && e.contains(words), "{e}");
        }
    }
}
