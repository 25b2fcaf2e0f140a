//! Text datasets: labelled utterances (intents), plain items to embed, pairs for pair
//! losses, and scored pairs (STS-B) for evaluation.
//!
//! A [`TextSet`] holds strings, a class label per string (an index into its class-name
//! table: labels are class names in every file a user sees) and the 1-based line each
//! came from (its sample id is `file:line`). It implements [`Samples`] for everything
//! but decoding: a text sample has no fixed `f32` shape (the encoder tokenises
//! [`TextSet::text`]), so `sample_shape` is `[0]` and `decode_into` refuses.
//!
//! Readers, one per file shape, each stated once in its module: plain text and JSONL
//! items ([`items`]), labelled CSV/TSV/JSONL with named columns and pair files
//! ([`table`]), CLINC150's `data_full.json` ([`clinc`]), STS-B's TSV ([`sts`]). Every
//! reader takes bytes (the file entry points read and pass them on), and every fault is
//! a [`DataError::Format`] naming the file, the 1-based line and the field.

pub mod card;
pub mod clinc;
pub mod items;
pub mod sts;
pub mod table;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::{DataError, Samples};

pub use card::{BaseModel, TEXT_CARD_FILE, TEXT_CARD_VERSION, TextModelCard};
pub use clinc::{Clinc150, load_clinc150};
pub use items::{ItemFormat, load_items, parse_items};
pub use sts::{ScoredPairs, load_sts, parse_sts};
pub use table::{PairColumns, PairSet, TableFormat, TextColumns, load_labelled, load_pairs, parse_labelled, parse_pairs};

/// Labelled (or unlabelled: one class `""`) text samples.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSet {
    name: String,
    texts: Vec<String>,
    labels: Vec<i64>,
    classes: Vec<String>,
    lines: Vec<usize>,
}

impl TextSet {
    /// Builds a set from `(line, text, class name)` rows; the class table is the sorted
    /// distinct names.
    pub fn from_rows(name: impl Into<String>, rows: Vec<(usize, String, String)>) -> Self {
        let classes: Vec<String> = rows.iter().map(|r| r.2.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let index: BTreeMap<&str, i64> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64)).collect();
        let labels = rows.iter().map(|r| index[r.2.as_str()]).collect();
        let (lines, texts) = rows.into_iter().map(|(l, t, _)| (l, t)).unzip();
        TextSet { name: name.into(), texts, labels, classes, lines }
    }

    /// Unlabelled items (every label 0, class name `""`), with their lines.
    pub fn unlabelled(name: impl Into<String>, items: Vec<(usize, String)>) -> Self {
        let (lines, texts): (Vec<usize>, Vec<String>) = items.into_iter().unzip();
        TextSet { name: name.into(), labels: vec![0; texts.len()], texts, classes: vec![String::new()], lines }
    }

    /// The text of sample `i`.
    pub fn text(&self, i: usize) -> &str {
        &self.texts[i]
    }
    /// All texts, in order.
    pub fn texts(&self) -> &[String] {
        &self.texts
    }
    /// All labels (indices into [`TextSet::classes`]).
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }
    /// The class-name table.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    /// The 1-based source line of sample `i`.
    pub fn line(&self, i: usize) -> usize {
        self.lines[i]
    }

    /// Re-labels onto `table` (a superset of this set's names, e.g. the training set's),
    /// so that two sets' labels are the same identities.
    ///
    /// # Errors
    /// A class of this set missing from `table`, named with this set's file.
    pub fn relabel_onto(&mut self, table: &[String]) -> Result<(), DataError> {
        let index: BTreeMap<&str, i64> = table.iter().enumerate().map(|(i, c)| (c.as_str(), i as i64)).collect();
        let map: Vec<i64> = self
            .classes
            .iter()
            .map(|c| {
                index.get(c.as_str()).copied().ok_or_else(|| DataError::Format {
                    path: self.name.clone(),
                    reason: format!("class {c:?} is not in the class table it must share ({} names)", table.len()),
                })
            })
            .collect::<Result<_, _>>()?;
        self.labels.iter_mut().for_each(|l| *l = map[*l as usize]);
        self.classes = table.to_vec();
        Ok(())
    }

    /// The samples whose class name is in `names`, keeping this class table.
    pub fn with_class_names(&self, names: &BTreeSet<String>, name: impl Into<String>) -> TextSet {
        let keep: Vec<usize> = (0..self.len()).filter(|&i| names.contains(&self.classes[self.labels[i] as usize])).collect();
        TextSet {
            name: name.into(),
            texts: keep.iter().map(|&i| self.texts[i].clone()).collect(),
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            lines: keep.iter().map(|&i| self.lines[i]).collect(),
        }
    }
}

/// One class table for several sets (the sorted union of their names), every set
/// re-labelled onto it.
pub fn share_classes(sets: &mut [&mut TextSet]) {
    let table: Vec<String> = sets.iter().flat_map(|s| s.classes.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    for s in sets.iter_mut() {
        s.relabel_onto(&table).expect("the union holds every set's names");
    }
}

/// The closed-set leakage check: refuses any utterance present (exactly, after trimming)
/// on both sides, naming both lines.
pub fn check_no_shared_text(left: &TextSet, right: &TextSet) -> Result<(), DataError> {
    let seen: BTreeMap<&str, usize> = left.texts.iter().zip(&left.lines).map(|(t, &l)| (t.trim(), l)).collect();
    let shared: Vec<String> = right
        .texts
        .iter()
        .zip(&right.lines)
        .filter_map(|(t, &l)| seen.get(t.trim()).map(|&ll| format!("{t:?} ({}:{ll} and {}:{l})", left.name, right.name)))
        .collect();
    if shared.is_empty() {
        return Ok(());
    }
    Err(DataError::Split(format!(
        "data leakage: {} utterance(s) of {} are also in {}, e.g. {}; a closed-set split must be by utterance",
        shared.len(),
        right.name,
        left.name,
        shared[..shared.len().min(3)].join(", ")
    )))
}

/// The closed-set repair of a split with a few shared utterances (CLINC150's standard
/// split has two): `right` without the utterances also in `left`, and how many were
/// removed. Used only when the configuration asks for it; the count goes to metrics.json.
pub fn without_shared_text(left: &TextSet, right: &TextSet) -> (TextSet, usize) {
    let seen: BTreeSet<&str> = left.texts.iter().map(|t| t.trim()).collect();
    let keep: Vec<usize> = (0..right.len()).filter(|&i| !seen.contains(right.texts[i].trim())).collect();
    let out = TextSet {
        name: right.name.clone(),
        texts: keep.iter().map(|&i| right.texts[i].clone()).collect(),
        labels: keep.iter().map(|&i| right.labels[i]).collect(),
        classes: right.classes.clone(),
        lines: keep.iter().map(|&i| right.lines[i]).collect(),
    };
    (out, right.len() - keep.len())
}

impl Samples for TextSet {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.texts.len()
    }
    /// Text has no fixed decoded shape: `[0]`.
    fn sample_shape(&self) -> &[usize] {
        &[0]
    }
    fn label(&self, i: usize) -> i64 {
        self.labels[i]
    }
    fn class_name(&self, label: i64) -> Cow<'_, str> {
        usize::try_from(label).ok().and_then(|l| self.classes.get(l)).map_or(Cow::Owned(format!("#{label}")), |c| Cow::Borrowed(c))
    }
    fn sample_id(&self, i: usize) -> Cow<'_, str> {
        Cow::Owned(format!("{}:{}", self.name, self.lines[i]))
    }
    fn decode_into(&self, i: usize, _out: &mut [f32]) -> Result<(), DataError> {
        Err(DataError::Split(format!("{}: sample {i} is text; it is tokenised by a text encoder, not decoded to values", self.name)))
    }
}

/// Reads a file's bytes (the file entry points of the readers).
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// The bytes as UTF-8 (a leading byte-order mark dropped), or an error naming the line
/// of the first invalid byte.
pub(crate) fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        bad(what, format!("line {line}: not UTF-8 (invalid byte at offset {} of the file)", e.valid_up_to()))
    })
}

pub(crate) fn bad(what: &str, reason: String) -> DataError {
    DataError::Format { path: what.to_string(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rows: &[(&str, &str)]) -> TextSet {
        TextSet::from_rows(name, rows.iter().enumerate().map(|(i, (t, c))| (i + 2, t.to_string(), c.to_string())).collect())
    }

    #[test]
    fn class_names_ids_and_shared_tables() {
        let mut a = set("a.csv", &[("hi", "greet"), ("bye", "leave")]);
        let mut b = set("b.csv", &[("yo", "greet"), ("pay", "bill")]);
        assert_eq!((a.class_name(a.label(1)), a.sample_id(1)), ("leave".into(), "a.csv:3".into()));
        share_classes(&mut [&mut a, &mut b]);
        assert_eq!(a.classes(), ["bill", "greet", "leave"]);
        assert_eq!(a.label(0), b.label(0));
        assert_eq!(b.class_name(b.label(1)), "bill");
        assert!(a.decode_into(0, &mut []).unwrap_err().to_string().contains("is text"));
        let mut c = set("c.csv", &[("x", "new")]);
        let e = c.relabel_onto(a.classes()).unwrap_err().to_string();
        assert!(e.contains("c.csv") && e.contains("\"new\""), "{e}");
    }

    #[test]
    fn leakage_by_utterance_names_both_lines() {
        let a = set("train", &[("hi", "greet"), ("bye", "leave")]);
        let b = set("test", &[("bye ", "leave")]);
        let e = check_no_shared_text(&a, &b).unwrap_err().to_string();
        assert!(e.contains("leakage") && e.contains("train:3") && e.contains("test:2"), "{e}");
        assert!(check_no_shared_text(&a, &set("test", &[("hello", "greet")])).is_ok());
    }

    #[test]
    fn utf8_errors_name_the_line() {
        let e = utf8(b"ok\nfine\nbad \xff here\n", "t.txt").unwrap_err().to_string();
        assert!(e.contains("t.txt") && e.contains("line 3") && e.contains("not UTF-8"), "{e}");
        assert_eq!(utf8(b"\xEF\xBB\xBFa", "t").unwrap(), "a");
    }
}
