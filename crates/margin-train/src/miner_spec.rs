//! The miner of a run (`[train.miner]`) and its serde form ([`MinerSpec`]).

use serde::{Deserialize, Serialize};

use margin::miner::{MinerConfig, TripletMarginMiner, TripletType};
use margin::{Distance, MarginError};

use crate::distance_form;

type Result<T> = std::result::Result<T, MarginError>;

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> MarginError {
    MarginError::InvalidConfig { field, value: value.to_string(), reason }
}

/// The miner of a run (`[train.miner]`): a table tagged by `kind` (`"none"` or a name of
/// [`MinerConfig::NAMES`]) holding that miner's own parameters under their own names, every
/// one optional (PML's defaults), unknown ones refused, and an optional `distance`
/// (`"euclidean"`, `"squared-euclidean"`, `"cosine"`, `"dot"` on L2-normalised rows, or
/// `{ kind = "euclidean", normalize = false }`) to mine with — **absent: the loss's distance** (in `margin train` and
/// `margin loss` alike).
///
/// ```toml
/// [train.miner]
/// kind = "multi-similarity"
/// epsilon = 0.1
/// distance = "cosine"   # optional; PML's default for this miner (absent: the loss's distance)
/// ```
///
/// The spelling of earlier releases, `name = "..."` with `margin` (the triplet-margin miner's
/// margin or the multi-similarity miner's epsilon) and `type_of_triplets`, is read and
/// translated, so their configurations and run folders (`config.toml`, `state.json`) still
/// load and resume; it is written in the current spelling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerSpec {
    /// The miner and its parameters; `None` for `kind = "none"` (every valid tuple).
    /// Its own distance field is not used: [`MinerSpec::build`] replaces it.
    pub miner: Option<MinerConfig>,
    /// The distance to mine with; `None`: the loss's.
    pub distance: Option<Distance>,
}

impl Default for MinerSpec {
    /// Triplet-margin, semi-hard triplets within margin 0.2, on the loss's distance.
    fn default() -> Self {
        MinerSpec::new(MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard)))
    }
}

impl MinerSpec {
    /// No miner: the loss uses every valid tuple.
    pub fn none() -> Self {
        MinerSpec { miner: None, distance: None }
    }

    /// `miner`, mining on the loss's distance.
    pub fn new(miner: MinerConfig) -> Self {
        MinerSpec { miner: Some(miner), distance: None }
    }

    /// The same miner on its own `distance`.
    pub fn with_distance(self, distance: Distance) -> Self {
        MinerSpec { distance: Some(distance), ..self }
    }

    /// The miner's `kind` (`"none"` without a miner).
    pub fn kind(&self) -> &'static str {
        self.miner.as_ref().map_or("none", MinerConfig::name)
    }

    /// Builds the miner (`None` for `"none"`), mining with its own distance or else
    /// `loss_distance`, and validates it.
    pub fn build(&self, loss_distance: Distance) -> Result<Option<MinerConfig>> {
        let Some(m) = self.miner else {
            if let Some(d) = self.distance {
                return Err(invalid("miner.distance", d.describe(), "kind = \"none\" mines nothing; remove `distance`"));
            }
            return Ok(None);
        };
        let m = match self.distance {
            Some(d) if !m.has_own_distance() && d != m.distance() => {
                return Err(invalid(
                    "miner.distance",
                    d.describe(),
                    "this miner mines on L2-normalised Euclidean distances only; remove `distance`",
                ));
            }
            Some(d) => m.with_distance(d),
            None => m.with_distance(loss_distance),
        };
        m.validate()?;
        Ok(Some(m))
    }

    /// Reads the table (current or earlier spelling) from a generic value.
    fn from_value(value: serde_json::Value) -> std::result::Result<Self, String> {
        use serde_json::Value;
        let Value::Object(mut map) = value else {
            return Err(format!("[train.miner] is a table (kind = \"...\" and the miner's parameters), not {value}"));
        };
        if map.contains_key("name") {
            map = translate_earlier_spelling(map)?;
        }
        let kind = match map.get("kind") {
            Some(Value::String(k)) => k.clone(),
            Some(other) => return Err(format!("miner `kind` is a name, not {other}")),
            None => return Err(format!("missing field `kind` (the miner: `none` or one of {})", quoted(MinerConfig::NAMES))),
        };
        let distance = map.remove("distance").map(|d| distance_form::from_value(&d).map_err(|e| format!("miner `distance`: {e}"))).transpose()?;
        if kind == "none" {
            if let Some(k) = map.keys().find(|k| *k != "kind") {
                return Err(format!("unknown field `{k}`: kind = \"none\" takes no parameters"));
            }
            if distance.is_some() {
                return Err("kind = \"none\" mines nothing; remove `distance`".into());
            }
            return Ok(MinerSpec::none());
        }
        if MinerConfig::default_for(&kind).is_none() {
            return Err(format!("unknown miner kind `{kind}`, expected `none` or one of {}", quoted(MinerConfig::NAMES)));
        }
        let miner: MinerConfig = serde_json::from_value(Value::Object(map)).map_err(|e| format!("miner `{kind}`: {e}"))?;
        Ok(MinerSpec { miner: Some(miner), distance })
    }

    /// The table as written: `kind`, the miner's parameters, `distance` when it has its own.
    fn to_value(self) -> serde_json::Value {
        use serde_json::Value;
        let mut map = serde_json::Map::new();
        if let Some(m) = &self.miner
            && let Value::Object(fields) = serde_json::to_value(m).expect("a miner serialises")
        {
            // Non-finite numbers become null in a JSON value: left out (validation refuses them).
            map.extend(fields.into_iter().filter(|(k, v)| k != "kind" && k != "distance" && !v.is_null()));
        }
        if let Some(d) = &self.distance {
            map.insert("distance".into(), distance_form::to_value(d));
        }
        map.insert("kind".into(), Value::String(self.kind().into()));
        Value::Object(map)
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The spelling of earlier releases, `name` + `margin` + `type_of_triplets` (the miner on the
/// loss's distance), in the current one: `name` → `kind`; `margin` → `margin` for
/// triplet-margin, `epsilon` for multi-similarity, refused elsewhere as it was then; nulls
/// (`state.json` wrote absent options as null) dropped.
fn translate_earlier_spelling(map: serde_json::Map<String, serde_json::Value>) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    use serde_json::Value;
    if map.contains_key("kind") {
        return Err("[train.miner] has both `kind` and `name`; write only kind = \"...\" (`name` is the earlier spelling)".into());
    }
    let mut out = serde_json::Map::new();
    let name = match map.get("name") {
        Some(Value::String(n)) => n.clone(),
        other => return Err(format!("miner `name` is a name, not {}", other.unwrap_or(&Value::Null))),
    };
    for (k, v) in map {
        if v.is_null() || k == "name" {
            continue;
        }
        let key = match (k.as_str(), name.as_str()) {
            // Ignored then as now: "none" built no miner whatever else was set.
            (_, "none") => continue,
            ("margin", "triplet-margin") | ("type_of_triplets", "triplet-margin") => k,
            ("margin", "multi-similarity") => "epsilon".to_string(),
            ("margin", "pair-margin") => {
                return Err("pair-margin has two margins: write kind = \"pair-margin\" with pos_margin = ... and neg_margin = ... (instead of name and margin)".into());
            }
            ("margin", other) => return Err(format!("the {other} miner has no margin: write kind = \"{other}\" (instead of name) without margin")),
            ("type_of_triplets", other) => {
                return Err(format!("only the triplet-margin miner has type_of_triplets: write kind = \"{other}\" (instead of name) without it"));
            }
            _ => return Err(format!("unknown field `{k}` beside the earlier spelling `name`; write kind = \"{name}\" with the miner's own parameters")),
        };
        out.insert(key, v);
    }
    out.insert("kind".into(), Value::String(name));
    Ok(out)
}

impl Serialize for MinerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let serde_json::Value::Object(map) = self.to_value() else { unreachable!("to_value gives a table") };
        // `kind` first, then the parameters, then `distance`.
        let mut out = s.serialize_map(Some(map.len()))?;
        out.serialize_entry("kind", &map["kind"])?;
        for (k, v) in map.iter().filter(|(k, _)| *k != "kind" && *k != "distance") {
            out.serialize_entry(k, v)?;
        }
        if let Some(d) = map.get("distance") {
            out.serialize_entry("distance", d)?;
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for MinerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        MinerSpec::from_value(serde_json::Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
