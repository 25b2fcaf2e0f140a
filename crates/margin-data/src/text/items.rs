//! Items to embed: plain text (one item per line) or JSON Lines (items that hold newlines).
//!
//! Plain text, the rule stated once: lines end with LF or CRLF; the final line ending
//! ends the last item (it does not start an empty one), so `"a\nb\n"` and `"a\nb"` are the
//! same two items; an empty line is an empty item (embedded as sentence-transformers
//! embeds `""`), so `"a\n\nb\n"` is three. A UTF-8 byte-order mark is dropped; a byte
//! that is not UTF-8 is an error naming its line. A file with no item at all is refused.
//! A line is kept as it is (no trimming): the tokenizer decides what spaces mean.
//!
//! JSON Lines: every line is one JSON value — a string, or an object whose `field` is a
//! string; a line that is not, or a blank line, is an error with its line number (JSON
//! Lines has no blank lines).

use std::path::Path;

use super::{TextSet, bad, read_bytes, utf8};
use crate::DataError;

/// How an items file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemFormat {
    /// One item per line.
    Lines,
    /// One JSON value per line: a string, or an object holding the text in `field`.
    JsonLines {
        /// The object field holding the text.
        field: String,
    },
}

impl ItemFormat {
    /// The format a file's extension implies: `.jsonl` (or `.ndjson`) → JSON Lines with
    /// field `text`, anything else plain lines.
    pub fn for_path(path: &Path) -> ItemFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson") => ItemFormat::JsonLines { field: "text".into() },
            _ => ItemFormat::Lines,
        }
    }
}

/// Reads an items file (unlabelled [`TextSet`], ids `file:line`).
pub fn load_items(path: &Path, format: &ItemFormat) -> Result<TextSet, DataError> {
    parse_items(&read_bytes(path)?, &path.display().to_string(), format)
}

/// Splits text into lines by the rule of the module docs: `(1-based line, content)`.
pub(crate) fn split_lines(text: &str) -> Vec<(usize, &str)> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    body.split('\n').enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l))).collect()
}

/// Reads items from bytes (`what` names them in errors).
pub fn parse_items(bytes: &[u8], what: &str, format: &ItemFormat) -> Result<TextSet, DataError> {
    let text = utf8(bytes, what)?;
    let lines = split_lines(text);
    if lines.is_empty() {
        return Err(bad(what, "no items (the file is empty)".into()));
    }
    let items = match format {
        ItemFormat::Lines => lines.into_iter().map(|(n, l)| (n, l.to_string())).collect(),
        ItemFormat::JsonLines { field } => lines
            .into_iter()
            .map(|(n, l)| json_text(l, field).map(|t| (n, t)).map_err(|r| bad(what, format!("line {n}: {r}"))))
            .collect::<Result<_, _>>()?,
    };
    Ok(TextSet::unlabelled(what, items))
}

/// The text of one JSON Lines line: a JSON string, or an object's string `field`.
pub(crate) fn json_text(line: &str, field: &str) -> Result<String, String> {
    if line.trim().is_empty() {
        return Err("blank line (JSON Lines has one JSON value on every line)".into());
    }
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(serde_json::Value::Object(o)) => match o.get(field) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!("field {field:?} is not a string but {}", kind(v))),
            None => Err(format!("no field {field:?} (fields: {:?})", o.keys().take(8).collect::<Vec<_>>())),
        },
        Ok(v) => Err(format!("a JSON {} where a string or an object was expected", kind(&v))),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

pub(crate) fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Samples;

    fn lines(s: &[u8]) -> Result<Vec<String>, String> {
        parse_items(s, "t.txt", &ItemFormat::Lines).map(|t| t.texts().to_vec()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_line_rule() {
        assert_eq!(lines(b"a\nb\n").unwrap(), ["a", "b"]);
        assert_eq!(lines(b"a\nb").unwrap(), ["a", "b"]);
        assert_eq!(lines(b"a\r\n\r\nb\r\n").unwrap(), ["a", "", "b"]);
        assert_eq!(lines(b"\n").unwrap(), [""]);
        assert_eq!(lines(b"\n\n").unwrap(), ["", ""]);
        assert_eq!(lines(b" x \n").unwrap(), [" x "]);
        assert!(lines(b"").unwrap_err().contains("no items"));
        let e = lines(b"a\nb\n\xc3(\n").unwrap_err();
        assert!(e.contains("t.txt") && e.contains("line 3") && e.contains("UTF-8"), "{e}");
        let t = parse_items(b"a\n\nc\n", "t.txt", &ItemFormat::Lines).unwrap();
        assert_eq!(t.sample_id(2), "t.txt:3");
    }

    #[test]
    fn json_lines() {
        let f = ItemFormat::for_path(Path::new("x.JSONL"));
        let t = parse_items(b"\"one\\ntwo\"\n{\"text\": \"three\", \"id\": 4}\n", "t.jsonl", &f).unwrap();
        assert_eq!(t.texts(), ["one\ntwo", "three"]);
        for (input, words) in [
            (&b"\"a\"\n\n\"b\"\n"[..], "line 2: blank"),
            (b"{\"txt\": \"a\"}\n", "line 1: no field \"text\""),
            (b"{\"text\": 3}\n", "not a string but number"),
            (b"[1]\n", "a JSON array"),
            (b"\"a\"\n{oops\n", "line 2: not JSON"),
        ] {
            let e = parse_items(input, "t.jsonl", &f).unwrap_err().to_string();
            assert!(e.contains("t.jsonl") && e.contains(words), "{e}");
        }
    }
}
