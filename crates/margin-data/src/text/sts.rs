//! STS Benchmark's TSV files (`sts-{train,dev,test}.csv`): scored sentence pairs.
//!
//! Each line: genre, file, year, id, score (0–5), sentence 1, sentence 2, and on some
//! lines trailing source columns (ignored). There is no header, cells are separated by
//! tabs and quoting must be off (the sentences hold unbalanced `"`). A score that is not
//! a finite number in [0, 5], or an empty sentence, is an error naming the line.

use std::path::Path;

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

/// [`load_sts`] from bytes, read by the `csv` crate (tab-delimited, quoting off, rows of
/// 7 or more cells; blank lines skipped), as the other delimited readers
/// ([`crate::delimited`]).
pub fn parse_sts(bytes: &[u8], what: &str) -> Result<ScoredPairs, DataError> {
    let text = utf8(bytes, what)?;
    let mut rd = csv::ReaderBuilder::new().delimiter(b'\t').quoting(false).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut p = ScoredPairs { name: what.into(), a: vec![], b: vec![], scores: vec![] };
    let mut record = csv::StringRecord::new();
    // The csv crate's own line count skips blank lines: lines are counted from byte offsets.
    let (mut at_byte, mut at_line) = (0usize, 1usize);
    loop {
        match rd.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(bad(what, format!("{e}"))),
        }
        let mut start = record.position().map_or(at_byte, |q| q.byte() as usize).clamp(at_byte, text.len());
        // A record's position may be the blank lines before it.
        while matches!(text.as_bytes().get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        at_line += text.as_bytes()[at_byte..start].iter().filter(|&&b| b == b'\n').count();
        at_byte = start;
        let line = at_line;
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        if record.len() < 7 {
            return Err(bad(what, format!("line {line}: {} tab-separated cells, STS-B has 7 (genre, file, year, id, score, sentence 1, sentence 2)", record.len())));
        }
        let score: f64 = record[4].trim().parse().map_err(|_| bad(what, format!("line {line}, field \"score\": {:?} is not a number", &record[4])))?;
        if !(0.0..=5.0).contains(&score) {
            return Err(bad(what, format!("line {line}, field \"score\": {score} is outside [0, 5]")));
        }
        for (f, c) in [("sentence 1", &record[5]), ("sentence 2", &record[6])] {
            if c.trim().is_empty() {
                return Err(bad(what, format!("line {line}, field {f:?}: empty cell")));
            }
        }
        p.a.push(record[5].to_string());
        p.b.push(record[6].to_string());
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

    /// The plain reading (split each line at tabs), the reference for the csv reader.
    fn naive(text: &str) -> Vec<(String, String, f64)> {
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[5].to_string(), c[6].to_string(), c[4].trim().parse().unwrap())
        }).collect()
    }

    #[test]
    fn the_stsb_files_read_as_the_plain_split_reads_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/stsbenchmark");
        for (f, n) in [("sts-dev.csv", 1500), ("sts-test.csv", 1379)] {
            let Ok(bytes) = std::fs::read(dir.join(f)) else {
                eprintln!("SKIPPED: {} absent", dir.join(f).display());
                continue;
            };
            let p = parse_sts(&bytes, f).unwrap();
            let reference = naive(std::str::from_utf8(&bytes).unwrap());
            assert_eq!(p.scores.len(), n, "{f}");
            let ours: Vec<(String, String, f64)> = p.a.into_iter().zip(p.b).zip(p.scores).map(|((a, b), s)| (a, b, s)).collect();
            assert_eq!(ours, reference, "{f}");
        }
    }

    #[test]
    fn reads_pairs_and_refuses_bad_rows() {
        let p = parse_sts(b"g\tf\t2012\t1\t2.5\tA \"girl.\tA girl.\n\ng\tf\t2012\t2\t5.000\tx\ty\tsrc\textra\n", "s.csv").unwrap();
        assert_eq!((p.a[0].as_str(), p.scores.clone()), ("A \"girl.", vec![2.5, 5.0]));
        // CRLF line endings; the error names the line after a blank one.
        let p = parse_sts(b"g\tf\t2012\t1\t1.0\tx\ty\r\n", "s.csv").unwrap();
        assert_eq!((p.a[0].as_str(), p.b[0].as_str()), ("x", "y"));
        let e = parse_sts(b"g\tf\t2012\t1\t1\ta\tb\n\ng\tf\t2012\t1\tx\ta\tb\n", "s.csv").unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
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
