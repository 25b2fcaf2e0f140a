//! STS Benchmark's TSV files (`sts-{train,dev,test}.csv`): scored sentence pairs.
//!
//! Each line: genre, file, year, id, score (0–5), sentence 1, sentence 2, and on some
//! lines trailing source columns (ignored). There is no header, cells are separated by
//! tabs and quoting must be off (the sentences hold unbalanced `"`). A score that is not
//! a finite number in [0, 5], or an empty sentence, is an error naming the line.

use std::path::Path;

use super::items::split_lines;
use super::{bad, read_bytes, utf8};
use crate::DataError;

/// Sentence pairs with gold similarity scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPairs {
    /// The file, for messages.
    pub name: String,
    /// First sentences.
    pub a: Vec<String>,
    /// Second sentences.
    pub b: Vec<String>,
    /// Gold scores.
    pub scores: Vec<f64>,
}

/// Reads an STS-B file.
pub fn load_sts(path: &Path) -> Result<ScoredPairs, DataError> {
    parse_sts(&read_bytes(path)?, &path.display().to_string())
}

/// [`load_sts`] from bytes.
pub fn parse_sts(bytes: &[u8], what: &str) -> Result<ScoredPairs, DataError> {
    let mut p = ScoredPairs { name: what.into(), a: vec![], b: vec![], scores: vec![] };
    for (line, l) in split_lines(utf8(bytes, what)?) {
        if l.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = l.split('\t').collect();
        if cells.len() < 7 {
            return Err(bad(what, format!("line {line}: {} tab-separated cells, STS-B has 7 (genre, file, year, id, score, sentence 1, sentence 2)", cells.len())));
        }
        let score: f64 = cells[4].trim().parse().map_err(|_| bad(what, format!("line {line}, field \"score\": {:?} is not a number", cells[4])))?;
        if !(0.0..=5.0).contains(&score) {
            return Err(bad(what, format!("line {line}, field \"score\": {score} is outside [0, 5]")));
        }
        for (f, c) in [("sentence 1", cells[5]), ("sentence 2", cells[6])] {
            if c.trim().is_empty() {
                return Err(bad(what, format!("line {line}, field {f:?}: empty cell")));
            }
        }
        p.a.push(cells[5].to_string());
        p.b.push(cells[6].to_string());
        p.scores.push(score);
    }
    if p.scores.is_empty() {
        return Err(bad(what, "no data rows".into()));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_refuses_bad_rows() {
        let p = parse_sts(b"g\tf\t2012\t1\t2.5\tA \"girl.\tA girl.\n\ng\tf\t2012\t2\t5.000\tx\ty\tsrc\textra\n", "s.csv").unwrap();
        assert_eq!((p.a[0].as_str(), p.scores.clone()), ("A \"girl.", vec![2.5, 5.0]));
        for (input, words) in [
            (&b"g\tf\t2012\t1\tnan?\ta\tb\n"[..], "line 1, field \"score\""),
            (b"g\tf\t2012\t1\t7\ta\tb\n", "outside [0, 5]"),
            (b"g\tf\t2012\t1\t1\ta\n", "6 tab-separated cells"),
            (b"g\tf\t2012\t1\t1\ta\t \n", "field \"sentence 2\""),
        ] {
            let e = parse_sts(input, "s.csv").unwrap_err().to_string();
            assert!(e.contains("s.csv") && e.contains(words), "{e}");
        }
    }
}
