//! The serde form of a [`Distance`] in configuration files, in the project's vocabulary:
//! `"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` — rows L2-normalised first
//! (PML's default) — or a table stating the normalisation,
//! `{ kind = "euclidean", normalize = false }`. The form of earlier releases,
//! `{ kind = "lp", power = "Euclidean" | "SquaredEuclidean", normalize = true }`, is read too.
//! Written as the string when rows are normalised, else as the table.

use margin::{CosineSimilarity, Distance, DotProductSimilarity, LpDistance, Power};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// `name` (one of [`NAMES`]) with `normalize`.
pub fn named(name: &str, normalize: bool) -> Result<Distance, String> {
    let lp = |power| Distance::Lp(LpDistance { power, normalize });
    Ok(match name {
        "euclidean" => lp(Power::Euclidean),
        "squared-euclidean" => lp(Power::SquaredEuclidean),
        "cosine" if !normalize => {
            return Err("cosine always normalises; for raw dot products write distance = { kind = \"dot\", normalize = false }".into());
        }
        "cosine" => Distance::Cosine(CosineSimilarity),
        "dot" => Distance::Dot(DotProductSimilarity { normalize }),
        other => return Err(format!("unknown distance `{other}`, expected one of `euclidean`, `squared-euclidean`, `cosine`, `dot`")),
    })
}

/// The name and normalisation of `d`.
pub fn name_of(d: &Distance) -> (&'static str, bool) {
    match *d {
        Distance::Lp(LpDistance { power: Power::Euclidean, normalize }) => ("euclidean", normalize),
        Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize }) => ("squared-euclidean", normalize),
        Distance::Cosine(_) => ("cosine", true),
        Distance::Dot(DotProductSimilarity { normalize }) => ("dot", normalize),
    }
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
    match name_of(d) {
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
