//! The serde form of a [`Distance`] in configuration files, in the project's vocabulary:
//! `"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` — rows L2-normalised first
//! (PML's default) — or a table stating the normalisation,
//! `{ kind = "euclidean", normalize = false }`. The form of earlier releases,
//! `{ kind = "lp", power = "Euclidean" | "SquaredEuclidean", normalize = true }`, is read too.
//! Written as the string when rows are normalised, else as the table.

use margin::{Distance, LpDistance, Power};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `name` (one of [`Distance::NAMES`]) with `normalize`, refusals explained in the
/// configuration file's terms.
pub fn named(name: &str, normalize: bool) -> Result<Distance, String> {
    Distance::from_name(name, normalize).ok_or_else(|| match name {
        "cosine" => "cosine always normalises; for raw dot products write distance = { kind = \"dot\", normalize = false }".to_string(),
        other => {
            let names: Vec<String> = Distance::NAMES.iter().map(|n| format!("`{n}`")).collect();
            format!("unknown distance `{other}`, expected one of {}", names.join(", "))
        }
    })
}

/// Reads either form (and the earlier one) from a generic value.
pub fn from_value(v: &Value) -> Result<Distance, String> {
    match v {
        Value::String(name) => named(name, true),
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).ok_or("a distance table needs `kind`, e.g. { kind = \"euclidean\", normalize = false }")?;
            let normalize = match map.get("normalize") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(format!("distance `normalize` must be true or false, not {other}")),
            };
            let allowed: &[&str] = if kind == "lp" { &["kind", "power", "normalize"] } else { &["kind", "normalize"] };
            if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(format!("unknown distance field `{k}`, expected `kind` or `normalize`"));
            }
            if kind == "lp" {
                // The earlier form: `{ kind = "lp", power = "Euclidean", normalize = true }`.
                let power = match map.get("power").and_then(Value::as_str) {
                    Some("Euclidean") => Power::Euclidean,
                    Some("SquaredEuclidean") => Power::SquaredEuclidean,
                    _ => return Err("distance kind \"lp\" needs power = \"Euclidean\" or \"SquaredEuclidean\" (or write distance = \"euclidean\" / \"squared-euclidean\")".into()),
                };
                return Ok(Distance::Lp(LpDistance { power, normalize }));
            }
            named(kind, normalize)
        }
        other => Err(format!("a distance is a name (\"euclidean\", \"squared-euclidean\", \"cosine\", \"dot\") or a table {{ kind, normalize }}, not {other}")),
    }
}

/// The value written for `d`.
pub fn to_value(d: &Distance) -> Value {
    match (d.name(), d.normalizes()) {
        (name, true) => Value::String(name.into()),
        (name, false) => serde_json::json!({ "kind": name, "normalize": false }),
    }
}

/// For `#[serde(with = "distance_form")]`.
pub fn serialize<S: Serializer>(d: &Distance, s: S) -> Result<S::Ok, S::Error> {
    to_value(d).serialize(s)
}

/// For `#[serde(with = "distance_form")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Distance, D::Error> {
    from_value(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
}
