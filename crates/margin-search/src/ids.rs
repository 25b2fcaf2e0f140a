//! Item ids: one UTF-8 string per item, never empty, never repeated among the live items.
//!
//! `ids.txt` inputs hold one id per line, LF or CRLF (a final newline is optional; a UTF-8
//! byte-order mark at the start is skipped, as Windows editors write one). A line is taken
//! as it is apart from its line ending: ids are names, and `" a"` and `"a"` are two names.
//! Every fault is an error naming the input and the 1-based line. Without an ids file an
//! item's id is its row number as a decimal string (`"0"`, `"1"`, …), the same rule the CLI
//! will use.

use std::collections::HashMap;

use crate::error::{Result, SearchError};

/// A validated list of ids, in row order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    input: String,
    names: Vec<String>,
}

impl Ids {
    /// Parses the bytes of an ids file; `input` names it in errors.
    ///
    /// # Errors
    /// [`SearchError::Ids`] for bytes that are not UTF-8, an empty line, or an id that
    /// repeats an earlier line's (both lines named).
    pub fn parse(input: &str, bytes: &[u8]) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            SearchError::Ids { input: input.to_string(), line, reason: format!("not UTF-8 (byte {} of the file)", e.valid_up_to()) }
        })?;
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.is_empty() {
            return Err(SearchError::Empty { input: input.to_string(), what: "no ids".into() });
        }
        let mut names = Vec::new();
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, raw) in body.split('\n').enumerate() {
            let line = i + 1;
            let id = raw.strip_suffix('\r').unwrap_or(raw);
            let bad = |reason: String| SearchError::Ids { input: input.to_string(), line, reason };
            if id.is_empty() {
                return Err(bad("empty id (every line must hold one id)".into()));
            }
            if id.contains('\r') {
                return Err(bad(format!("id {id:?} contains a carriage return")));
            }
            if let Some(prev) = first.insert(id, line) {
                return Err(bad(format!("duplicate id {id:?} (first on line {prev})")));
            }
            names.push(id.to_string());
        }
        Ok(Self { input: input.to_string(), names })
    }

    /// Validates ids given as strings (from a binding or a test); `input` names them.
    ///
    /// # Errors
    /// As [`Ids::parse`], with the 1-based position as the line.
    pub fn from_strings(input: &str, names: Vec<String>) -> Result<Self> {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, id) in names.iter().enumerate() {
            let bad = |reason: String| SearchError::Ids { input: input.to_string(), line: i + 1, reason };
            if id.is_empty() {
                return Err(bad("empty id".into()));
            }
            if id.contains(['\n', '\r']) {
                return Err(bad(format!("id {id:?} contains a line break")));
            }
            if let Some(prev) = first.insert(id, i + 1) {
                return Err(bad(format!("duplicate id {id:?} (first on line {prev})")));
            }
        }
        Ok(Self { input: input.to_string(), names })
    }

    /// Row numbers `start, start + 1, …` as ids, `n` of them.
    pub fn rows(start: usize, n: usize) -> Self {
        Self { input: "row numbers".into(), names: (start..start + n).map(|i| i.to_string()).collect() }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// `true` when there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The ids in row order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of the input the ids came from.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Checks that there is one id per vector row.
    ///
    /// # Errors
    /// [`SearchError::IdCount`] naming both inputs.
    pub fn check_count(&self, vectors_input: &str, rows: usize) -> Result<()> {
        if self.names.len() != rows {
            return Err(SearchError::IdCount { ids: self.input.clone(), n_ids: self.names.len(), vectors: vectors_input.into(), rows });
        }
        Ok(())
    }

    pub(crate) fn into_names(self) -> Vec<String> {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_crlf_bom_and_final_newline() {
        let a = Ids::parse("ids.txt", b"a\nb\r\nc").unwrap();
        let b = Ids::parse("ids.txt", b"\xEF\xBB\xBFa\r\nb\nc\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.names(), ["a", "b", "c"]);
        assert_eq!(Ids::parse("x", b" a \n").unwrap().names(), [" a "]);
        assert_eq!(Ids::rows(3, 2).names(), ["3", "4"]);
    }

    #[test]
    fn faults_name_the_line() {
        let e = Ids::parse("ids.txt", b"a\n\nb\n").unwrap_err().to_string();
        assert_eq!(e, "ids.txt: line 2: empty id (every line must hold one id)");
        let e = Ids::parse("ids.txt", b"a\r\nb\r\na\r\n").unwrap_err().to_string();
        assert_eq!(e, "ids.txt: line 3: duplicate id \"a\" (first on line 1)");
        let e = Ids::parse("ids.txt", b"a\nb\n\xff\n").unwrap_err().to_string();
        assert!(e.starts_with("ids.txt: line 3: not UTF-8"), "{e}");
        let e = Ids::parse("ids.txt", b"").unwrap_err().to_string();
        assert_eq!(e, "ids.txt is empty: no ids");
        let e = Ids::parse("ids.txt", b"a\rb\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("carriage return"), "{e}");
        let ids = Ids::parse("ids.txt", b"a\nb\n").unwrap();
        let e = ids.check_count("G.npy", 3).unwrap_err().to_string();
        assert_eq!(e, "ids.txt has 2 ids but G.npy has 3 rows");
        assert!(Ids::from_strings("py", vec!["a".into(), "a".into()]).unwrap_err().to_string().contains("line 2"));
    }
}
