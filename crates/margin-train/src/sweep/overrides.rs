//! A point's values applied to the configuration **document**, before it is deserialised
//! into the typed [`RunConfig`]: the file is parsed once with `toml_edit` (which keeps
//! comments, order and formatting), each value is set at its dotted path (an existing
//! value keeps its comment; a missing key or table is added), and the edited text goes
//! through [`crate::parse_config`] and [`crate::validate_run`] like any configuration file.
//! So a value of the wrong type, or out of its range, gets the same verdict as in the file,
//! and `best.toml` is the original text with the chosen values in it — comments and all.
//!
//! **Unknown paths.** The typed configuration refuses unknown keys (`deny_unknown_fields`
//! on every section); as a second guard, independent of how each section is declared, the
//! path must be found in the typed configuration written back out (a key the deserialiser
//! ignored would not be there). The walk stops, accepting, where it meets a non-table
//! value: a section with a compact form (a distance written as a string) spells its
//! fields differently.

use toml_edit::{DocumentMut, Item, Table, Value};

use super::SweepError;
use super::grid::{Param, Point, value_text};
use crate::{RunConfig, TrainError, parse_config};

/// The configuration file a sweep starts from.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    /// The file's text, as read.
    pub text: String,
    /// The file's name, for messages.
    pub source: String,
    doc: DocumentMut,
    /// The configuration it holds (no override applied).
    pub config: RunConfig,
}

/// Sets `value` at `keys` in `doc` (see the module docs).
fn set(doc: &mut DocumentMut, keys: &[String], value: &Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().expect("a parsed path has a key");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    let mut walked = Vec::new();
    for k in parents {
        walked.push(k.as_str());
        if !table.contains_key(k) {
            let mut t = Table::new();
            t.set_implicit(true);
            table.insert(k, Item::Table(t));
        }
        let item = table.get_mut(k).expect("inserted above");
        let kind = item.type_name();
        table = item.as_table_like_mut().ok_or_else(|| format!("{} holds a {kind} in the configuration, not a table", walked.join(".")))?;
    }
    let mut v = value.clone();
    match table.get_mut(last) {
        Some(Item::Value(old)) => {
            *v.decor_mut() = old.decor().clone();
            *old = v;
        }
        Some(other @ (Item::Table(_) | Item::ArrayOfTables(_))) => {
            let kind = other.type_name();
            return Err(format!("{} holds a {kind} in the configuration: a param sets one value (give the paths of its keys)", keys.join(".")));
        }
        _ => {
            table.insert(last, Item::Value(v));
        }
    }
    Ok(())
}

/// Whether `keys` name something in the typed configuration written back out (see the
/// module docs): `Err` with the first key that is not there.
fn check_known(cfg: &RunConfig, keys: &[String]) -> Result<(), String> {
    let written: toml::Table = crate::config_toml(cfg).parse().map_err(|e| format!("the configuration does not read back: {e}"))?;
    let mut here = &written;
    for (i, k) in keys.iter().enumerate() {
        match here.get(k) {
            Some(toml::Value::Table(t)) => here = t,
            Some(_) => return Ok(()),
            None => {
                let at = if i == 0 { "the configuration".to_string() } else { keys[..i].join(".") };
                let mut known: Vec<&str> = here.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(format!("unknown key: {at} has no {k:?} (it has: {})", known.join(", ")));
            }
        }
    }
    Ok(())
}

/// The parser's or validator's reason, without the file name (the message names the param).
fn reason(e: TrainError) -> String {
    match e {
        TrainError::Config { reason, .. } => reason.trim().to_string(),
        other => other.to_string(),
    }
}

impl BaseConfig {
    /// Parses the configuration file `text` (named `source` in messages), as a document and
    /// as a typed configuration.
    pub fn parse(text: &str, source: &str) -> Result<Self, SweepError> {
        let config = parse_config(text, source)?;
        crate::validate_run(&config).map_err(|e| SweepError::Train(e.into()))?;
        let doc = text.parse::<DocumentMut>().map_err(|e| SweepError::Train(TrainError::Config { file: source.to_string(), reason: e.to_string() }))?;
        Ok(BaseConfig { text: text.to_string(), source: source.to_string(), doc, config })
    }

    /// The original text with `values` set (comments and layout kept).
    pub fn text_with(&self, values: &[(Param, Value)]) -> Result<String, SweepError> {
        let mut doc = self.doc.clone();
        for (p, v) in values {
            set(&mut doc, &p.keys, v).map_err(|reason| SweepError::Value { param: p.path.clone(), value: value_text(v), reason })?;
        }
        Ok(doc.to_string())
    }

    /// The typed configuration with `values` set, checked as a configuration file is;
    /// errors name the param and the value.
    fn config_with(&self, values: &[(Param, Value)]) -> Result<RunConfig, String> {
        let text = self.text_with(values).map_err(|e| match e {
            SweepError::Value { reason, .. } => reason,
            other => other.to_string(),
        })?;
        let cfg = parse_config(&text, &self.source).map_err(reason)?;
        for (p, _) in values {
            check_known(&cfg, &p.keys)?;
        }
        crate::validate_run(&cfg).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// Checks every value of every param on its own (so an error names the one param and
    /// value at fault), then every point of the grid (a combination can be refused where
    /// each value alone is fine: `train.schedule.min_lr` above `train.lr`).
    pub fn check_grid(&self, grid: &super::Grid) -> Result<(), SweepError> {
        for p in &grid.params {
            for v in &p.values {
                self.config_with(&[(p.clone(), v.clone())]).map_err(|reason| SweepError::Value { param: p.path.clone(), value: value_text(v), reason })?;
            }
        }
        Ok(())
    }

    /// The configuration of `point`'s run: its values set, `epochs` (the sweep's `--epochs`)
    /// in place of `train.epochs`, and the split's seed fixed to the file's (so a point that
    /// sets `train.seed` is validated on the same classes as the others).
    pub fn run_config(&self, point: &Point, epochs: Option<usize>) -> Result<RunConfig, SweepError> {
        let mut cfg = self.config_with(&point.values).map_err(|reason| SweepError::Point { point: point.label(), reason })?;
        if let Some(e) = epochs {
            cfg.train.epochs = e;
        }
        if !point.values.iter().any(|(p, _)| p.keys.first().is_some_and(|k| k == "split") && p.keys.get(1).is_none_or(|k| k == "seed")) {
            cfg.split.seed = Some(self.config.split.seed.unwrap_or(self.config.train.seed));
        }
        crate::validate_run(&cfg).map_err(|e| SweepError::Point { point: point.label(), reason: e.to_string() })?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Grid;
    use super::*;

    const CONFIG: &str = r#"# digits, for the tests
[data]
kind = "csv"
path = "digits.csv"
label_column = -1

[split]
train_classes = [0, 1, 2, 3, 4]
test_classes = [5, 6, 7, 8, 9]

[train]
seed = 0
epochs = 3 # the real run's
lr = 3e-4

[train.model]
kind = "mlp"
hidden = [64, 64]
embedding_dim = 32

[train.loss]
kind = "triplet"
margin = 0.2 # the margin to tune

[train.sampler]
classes_per_batch = 5
samples_per_class = 16
"#;

    fn base() -> BaseConfig {
        BaseConfig::parse(CONFIG, "digits.toml").unwrap()
    }

    fn grid(specs: &[&str]) -> Grid {
        Grid::parse(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn refused(specs: &[&str]) -> String {
        base().check_grid(&grid(specs)).unwrap_err().to_string()
    }

    #[test]
    fn values_land_in_the_typed_configuration_and_the_text_keeps_its_comments() {
        let b = base();
        let g = grid(&["train.loss.margin=0.05,0.4", "train.sampler.classes_per_batch=3", "train.schedule.kind=cosine"]);
        b.check_grid(&g).unwrap();
        let p = &g.points()[1];
        let cfg = b.run_config(p, Some(1)).unwrap();
        assert!(matches!(cfg.train.loss, crate::LossSpec::Triplet { margin, .. } if margin == 0.4));
        assert_eq!(cfg.train.sampler.classes_per_batch, 3);
        assert_eq!(cfg.train.schedule, crate::Schedule::Cosine { min_lr: 0.0 });
        assert_eq!(cfg.train.epochs, 1, "--epochs is the sweep's");
        assert_eq!(cfg.split.seed, Some(0), "the split seed is fixed to the file's");
        let text = b.text_with(&p.values).unwrap();
        assert!(text.contains("margin = 0.4 # the margin to tune"), "{text}");
        assert!(text.contains("epochs = 3 # the real run's") && text.starts_with("# digits, for the tests"), "{text}");
        assert!(parse_config(&text, "best").unwrap().train.epochs == 3);
    }

    #[test]
    fn unknown_paths_wrong_types_and_bad_values_name_the_param_and_value() {
        let e = refused(&["train.loss.marginn=0.1"]);
        assert!(e.contains("train.loss.marginn") && e.contains("0.1") && e.contains("unknown"), "{e}");
        let e = refused(&["trian.lr=0.1"]);
        assert!(e.contains("trian.lr") && e.contains("unknown"), "{e}");
        let e = refused(&["train.loss.margin=0.1,abc"]);
        assert!(e.contains("train.loss.margin") && e.contains("\"abc\"") && e.contains("invalid type"), "{e}");
        let e = refused(&["train.loss.margin=0.1,-5"]);
        assert!(e.contains("train.loss.margin") && e.contains("-5"), "{e}");
        let e = refused(&["train.lr.x=1"]);
        assert!(e.contains("train.lr holds") && e.contains("not a table"), "{e}");
        let e = refused(&["train.model=1"]);
        assert!(e.contains("train.model holds") && e.contains("table"), "{e}");
        // A combination refused where each value alone is fine.
        let b = base();
        let g = grid(&["train.lr=0.0001,0.01", "train.schedule={ kind = \"cosine\", min_lr = 0.0002 }"]);
        b.check_grid(&g).unwrap();
        assert!(b.run_config(&g.points()[1], None).is_ok());
        let e = b.run_config(&g.points()[0], None).unwrap_err().to_string();
        assert!(e.contains("train.lr=0.0001") && e.contains("train.schedule.min_lr"), "{e}");
    }
}
