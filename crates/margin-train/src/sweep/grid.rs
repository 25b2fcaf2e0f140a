//! The grid of a sweep: each `--param PATH=V1,V2,…` is a dotted TOML path and its values,
//! each value parsed as the TOML value it would be in the configuration file (`0.1` a float,
//! `5` an integer, `true` a boolean, `"cosine"` or the bare word `cosine` a string, `[64, 64]`
//! an array); several params form their cartesian product, the first param varying slowest
//! (as nested loops in the order given), so a grid's points always come in the same order.
//!
//! A point's id is the first 12 hex digits of the SHA-256 of its assignments in canonical
//! JSON (`[[path, value], …]`, floats in shortest round-trip form): the same params give the
//! same id in every sweep, whatever the spelling (`0.10` and `0.1` are one value).

use sha2::{Digest, Sha256};
use toml::Value;

use super::SweepError;

/// More points than this is a typo (a sweep of ten params of ten values), refused.
pub const MAX_POINTS: usize = 10_000;

/// One `--param`: a dotted path and its values, in the order given.
#[derive(Debug, Clone)]
pub struct Param {
    /// The path as given (`train.loss.margin`).
    pub path: String,
    /// Its keys (`["train", "loss", "margin"]`).
    pub keys: Vec<String>,
    /// The values, as parsed TOML values.
    pub values: Vec<Value>,
}

/// The params of a sweep.
#[derive(Debug, Clone)]
pub struct Grid {
    /// In the order given on the command line.
    pub params: Vec<Param>,
}

/// One point of the grid: a value for every param.
#[derive(Debug, Clone)]
pub struct Point {
    /// Its position in the grid's order (0-based).
    pub index: usize,
    /// `(param, value)` for every param of the grid, in the grid's order.
    pub values: Vec<(Param, Value)>,
}

/// A param's value as the JSON files hold it: `{"path": "train.loss.margin", "value": 0.1}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamValue {
    /// The dotted path.
    pub path: String,
    /// The value (TOML → JSON: strings, numbers, booleans, arrays, tables; a datetime as its text).
    pub value: serde_json::Value,
}

/// `v` as TOML text (`0.1`, `"cosine"`, `[64, 64]`).
pub fn value_text(v: &Value) -> String {
    v.to_string().trim().to_string()
}

/// `v` as JSON (non-finite floats, which JSON cannot hold, as their TOML text: `"nan"`).
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::String(s) => J::String(s.clone()),
        Value::Integer(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(|| J::String(value_text(v)), J::Number),
        Value::Boolean(b) => J::Bool(*b),
        Value::Datetime(d) => J::String(d.to_string()),
        Value::Array(a) => J::Array(a.iter().map(value_json).collect()),
        Value::Table(t) => J::Object(t.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
    }
}

fn bad(param: &str, reason: impl Into<String>) -> SweepError {
    SweepError::Param { param: param.to_string(), reason: reason.into() }
}

/// Splits `text` at the commas that are outside strings, arrays and inline tables.
fn split_values(param: &str, text: &str) -> Result<Vec<String>, SweepError> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '[' | '{' => {
                    depth += 1;
                    cur.push(c);
                }
                ']' | '}' => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(bad(param, format!("unbalanced '{c}' in {text:?}")));
                    }
                    cur.push(c);
                }
                ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            },
        }
    }
    if quote.is_some() || depth != 0 {
        return Err(bad(param, format!("unterminated string, array or table in {text:?}")));
    }
    out.push(cur);
    Ok(out)
}

/// A bare word (`cosine`, `batch-hard`): a string value.
fn is_bare_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One value: TOML if it parses as one TOML value, else a bare word as a string.
fn parse_value(param: &str, position: usize, raw: &str) -> Result<Value, SweepError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(bad(param, format!("value {position} is empty (values are separated by commas: PATH=V1,V2)")));
    }
    // Parsed as the right-hand side of a key; anything past one value (a newline and
    // another key) is refused.
    let parsed = toml::from_str::<toml::Table>(&format!("v = {s}")).map_err(|e| e.message().to_string());
    match parsed {
        Ok(mut t) if t.len() == 1 && !s.contains(['\n', '\r']) => Ok(t.remove("v").expect("the one key")),
        Err(_) if is_bare_word(s) => Ok(Value::String(s.to_string())),
        Ok(_) => Err(bad(param, format!("value {position} {s:?} is more than one TOML value"))),
        Err(e) => Err(bad(param, format!("value {position} {s:?} is not a TOML value (a number, true/false, a \"string\" or bare word, an [array]): {}", e.trim()))),
    }
}

impl Param {
    /// Parses `PATH=V1,V2,…`.
    pub fn parse(spec: &str) -> Result<Param, SweepError> {
        let Some((path, values)) = spec.split_once('=') else {
            return Err(bad(spec, "expected PATH=V1,V2,… (a dotted TOML path and comma-separated values, e.g. train.loss.margin=0.05,0.1,0.2)"));
        };
        let path = path.trim();
        let keys: Vec<String> = path.split('.').map(|k| k.trim().to_string()).collect();
        if let Some(k) = keys.iter().find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            return Err(bad(spec, format!("the path {path:?} has the key {k:?}: a path is bare TOML keys joined by dots (train.loss.margin)")));
        }
        let mut parsed: Vec<Value> = Vec::new();
        for (i, raw) in split_values(spec, values)?.iter().enumerate() {
            let v = parse_value(path, i + 1, raw)?;
            if parsed.iter().any(|p| value_json(p) == value_json(&v)) {
                return Err(bad(path, format!("the value {} is given twice", value_text(&v))));
            }
            parsed.push(v);
        }
        Ok(Param { path: keys.join("."), keys, values: parsed })
    }
}

impl Grid {
    /// The grid of the `--param` specs, in order: at least one, no path twice, no path
    /// inside another (`train.loss` and `train.loss.margin`), at most [`MAX_POINTS`] points.
    pub fn parse(specs: &[String]) -> Result<Grid, SweepError> {
        if specs.is_empty() {
            return Err(bad("--param", "a sweep needs at least one --param PATH=V1,V2,…"));
        }
        let params = specs.iter().map(|s| Param::parse(s)).collect::<Result<Vec<_>, _>>()?;
        for (i, a) in params.iter().enumerate() {
            for b in &params[..i] {
                let (short, long) = if a.keys.len() <= b.keys.len() { (a, b) } else { (b, a) };
                if long.keys.starts_with(&short.keys) {
                    let why = if a.keys == b.keys { "is given twice".to_string() } else { format!("contains {} (give one of them)", long.path) };
                    return Err(bad(&short.path, why));
                }
            }
        }
        let grid = Grid { params };
        let n = grid.params.iter().try_fold(1usize, |n, p| n.checked_mul(p.values.len())).unwrap_or(usize::MAX);
        if n > MAX_POINTS {
            return Err(bad("--param", format!("the grid has {n} points, more than the {MAX_POINTS} a sweep accepts")));
        }
        Ok(grid)
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.params.iter().map(|p| p.values.len()).product()
    }

    /// Whether the grid has no point (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point, the first param varying slowest.
    pub fn points(&self) -> Vec<Point> {
        (0..self.len())
            .map(|index| {
                let mut rest = index;
                let mut values = Vec::with_capacity(self.params.len());
                for p in self.params.iter().rev() {
                    values.push((p.clone(), p.values[rest % p.values.len()].clone()));
                    rest /= p.values.len();
                }
                values.reverse();
                Point { index, values }
            })
            .collect()
    }

    /// The grid as `sweep.json` records it: each path with its values as JSON.
    pub fn describe(&self) -> Vec<GridParam> {
        self.params.iter().map(|p| GridParam { path: p.path.clone(), values: p.values.iter().map(value_json).collect() }).collect()
    }
}

/// A param of the grid as `sweep.json` records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridParam {
    /// The dotted path.
    pub path: String,
    /// Its values, in order.
    pub values: Vec<serde_json::Value>,
}

impl GridParam {
    /// As the command line gives it: `train.loss.margin=0.05,0.1`.
    pub fn flag(&self) -> String {
        let vals: Vec<String> = self.values.iter().map(|v| v.to_string()).collect();
        format!("{}={}", self.path, vals.join(","))
    }
}

impl Point {
    /// The assignments as the JSON files hold them.
    pub fn params(&self) -> Vec<ParamValue> {
        self.values.iter().map(|(p, v)| ParamValue { path: p.path.clone(), value: value_json(v) }).collect()
    }

    /// The point's id (see the module docs).
    pub fn id(&self) -> String {
        let canon: Vec<(String, serde_json::Value)> = self.values.iter().map(|(p, v)| (p.path.clone(), value_json(v))).collect();
        let bytes = serde_json::to_vec(&canon).expect("JSON values serialise");
        Sha256::digest(&bytes).iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    /// `train.loss.margin=0.05, train.lr=0.001`.
    pub fn label(&self) -> String {
        self.values.iter().map(|(p, v)| format!("{}={}", p.path, value_text(v))).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(specs: &[&str]) -> Result<Grid, String> {
        Grid::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_typed_as_toml_would_type_them() {
        let g = grid(&["train.loss.margin=0.05,0.1,1", "train.schedule.kind=cosine,\"step\"", "train.model.hidden=[64, 64],[32]", "train.loss.swap=true"]).unwrap();
        let p = &g.params;
        assert!(matches!(p[0].values[0], Value::Float(_)) && matches!(p[0].values[2], Value::Integer(_)));
        assert_eq!(value_json(&p[1].values[0]), serde_json::json!("cosine"));
        assert_eq!(value_json(&p[1].values[1]), serde_json::json!("step"));
        assert_eq!(value_json(&p[2].values[0]), serde_json::json!([64, 64]));
        assert_eq!(value_text(&p[0].values[1]), "0.1");
        assert_eq!(p[2].values.len(), 2, "commas inside an array do not split values");
        assert_eq!(value_json(&p[3].values[0]), serde_json::json!(true));
        assert_eq!(g.len(), 3 * 2 * 2);
    }

    #[test]
    fn points_come_in_nested_loop_order_with_stable_ids() {
        let g = grid(&["a.x=1,2", "a.y=\"p\",\"q\",\"r\""]).unwrap();
        let labels: Vec<String> = g.points().iter().map(Point::label).collect();
        assert_eq!(labels[0], "a.x=1, a.y=\"p\"");
        assert_eq!(labels[1], "a.x=1, a.y=\"q\"");
        assert_eq!(labels[3], "a.x=2, a.y=\"p\"");
        let ids: std::collections::BTreeSet<String> = g.points().iter().map(Point::id).collect();
        assert_eq!(ids.len(), 6, "distinct points, distinct ids");
        // The id is of the values, not of their spelling or of the grid around them.
        let a = grid(&["train.lr=0.10"]).unwrap().points()[0].id();
        let b = grid(&["train.lr=0.1,0.2"]).unwrap().points()[0].id();
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
    }

    #[test]
    fn bad_specs_are_refused_naming_the_param() {
        for (spec, says) in [
            (vec!["train.loss.margin"], "expected PATH=V1,V2"),
            (vec!["train..margin=1"], "bare TOML keys"),
            (vec!["train.loss.margin=0.1,"], "value 2 is empty"),
            (vec!["train.loss.margin=0.1x"], "not a TOML value"),
            (vec!["train.loss.margin=[1,2"], "unterminated"),
            (vec!["train.loss.margin=0.1,0.10"], "given twice"),
            (vec!["train.lr=1", "train.lr=2"], "given twice"),
            (vec!["train.loss=1", "train.loss.margin=2"], "contains train.loss.margin"),
            (vec![], "at least one --param"),
        ] {
            let e = grid(&spec).unwrap_err();
            assert!(e.contains(says), "{spec:?}: {e}");
        }
        let e = grid(&["train.loss.margin=0.1x"]).unwrap_err();
        assert!(e.contains("train.loss.margin") && e.contains("0.1x"), "{e}");
        let many: Vec<String> = (0..5).map(|i| format!("p.k{i}=1,2,3,4,5,6,7,8,9,10")).collect();
        assert!(Grid::parse(&many).unwrap_err().to_string().contains("more than"));
    }
}
