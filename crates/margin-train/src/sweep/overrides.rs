//! A point's values applied to the configuration **document**, before it is deserialised
//! into the typed [`RunConfig`]: the file is parsed once into a TOML table, each value is set
//! at its dotted path (a missing key or table is added), and the table is deserialised and
//! checked ([`crate::validate_run`]) like any configuration file. So a value of the wrong
//! type, or out of its range, gets the same verdict as in the file.
//!
//! **Unknown paths.** The typed configuration refuses unknown keys (`deny_unknown_fields`
//! on every section); as a second guard, independent of how each section is declared, the
//! path must be found in the typed configuration written back out (a key the deserialiser
//! ignored would not be there). The walk stops, accepting, where it meets a non-table
//! value: a section with a compact form (a distance written as a string) spells its
//! fields differently.
//!
//! **`best.toml` keeps the file's text.** The values are spliced into the original text at
//! the byte spans the `toml` crate's span-keeping parser (`toml::de::DeTable`) gives each
//! value — comments, order and layout stay; a key the file lacks is added under its table
//! (after the table's last value), or as a new `[table]` at the end. The result is parsed
//! back and compared with the edited table; if it differs (a layout the splice does not
//! handle: an inline table to extend, dotted keys), the edited table is written out instead,
//! with a first-line comment saying the original's comments were not kept. (No
//! format-preserving editor crate is used: `toml_edit` would change the features of a crate
//! below Burn — `winnow`, through `cubecl-environment`'s `toml` — and so rebuild Burn, and
//! the Python wheel's build would no longer reuse the workspace's.)

use std::ops::Range;

use toml::Value;

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
    table: toml::Table,
    /// The configuration it holds (no override applied).
    pub config: RunConfig,
}

/// Sets `value` at `keys` in `table` (see the module docs).
fn set(table: &mut toml::Table, keys: &[String], value: &Value) -> Result<(), String> {
    let (last, parents) = keys.split_last().expect("a parsed path has a key");
    let mut here = table;
    for (i, k) in parents.iter().enumerate() {
        let item = here.entry(k.clone()).or_insert_with(|| Value::Table(toml::Table::new()));
        let kind = item.type_str();
        here = match item {
            Value::Table(t) => t,
            _ => return Err(format!("{} holds a{} {kind} in the configuration, not a table", keys[..=i].join("."), if kind.starts_with(['a', 'i']) { "n" } else { "" })),
        };
    }
    if let Some(Value::Table(_)) = here.get(last)
        && !matches!(value, Value::Table(_))
    {
        return Err(format!("{} holds a table in the configuration: a param sets one value (give the paths of its keys)", keys.join(".")));
    }
    here.insert(last.clone(), value.clone());
    Ok(())
}

/// Removes the value at `keys` from `table`; `false` when there is none.
fn remove(table: &mut toml::Table, keys: &[String]) -> bool {
    let (last, parents) = keys.split_last().expect("a parsed path has a key");
    let mut here = table;
    for k in parents {
        match here.get_mut(k) {
            Some(Value::Table(t)) => here = t,
            _ => return false,
        }
    }
    here.remove(last).is_some()
}

/// Whether `keys` name something in the typed configuration written back out (see the
/// module docs): `Err` with the first key that is not there.
fn check_known(cfg: &RunConfig, keys: &[String]) -> Result<(), String> {
    let written: toml::Table = crate::config_toml(cfg).parse().map_err(|e| format!("the configuration does not read back: {e}"))?;
    let mut here = &written;
    for (i, k) in keys.iter().enumerate() {
        match here.get(k) {
            Some(Value::Table(t)) => here = t,
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

/// The byte span of the value at `keys` in `text`, and whether it is a table.
fn span_of(text: &str, keys: &[String]) -> Option<(Range<usize>, bool)> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut here = doc.get_ref();
    for (i, k) in keys.iter().enumerate() {
        let v = here.get(k.as_str())?;
        match v.get_ref() {
            toml::de::DeValue::Table(t) if i + 1 < keys.len() => here = t,
            toml::de::DeValue::Table(_) => return Some((v.span(), true)),
            _ if i + 1 == keys.len() => return Some((v.span(), false)),
            _ => return None,
        }
    }
    None
}

/// Where a new `key = value` line of the table at `keys` goes: after the line of its last
/// value; `None` when the table has no value of its own (or is not a plain table).
fn insertion_point(text: &str, keys: &[String]) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut here = doc.get_ref();
    for k in keys {
        match here.get(k.as_str())?.get_ref() {
            toml::de::DeValue::Table(t) => here = t,
            _ => return None,
        }
    }
    let end = here.values().filter(|v| !matches!(v.get_ref(), toml::de::DeValue::Table(_))).map(|v| v.span().end).max()?;
    Some(text[end..].find('\n').map_or(text.len(), |n| end + n + 1))
}

/// `text` with `value` at `keys` (see the module docs); `None` where the splice does not apply.
fn splice(text: &str, keys: &[String], value: &Value) -> Option<String> {
    let v = value_text(value);
    match span_of(text, keys) {
        Some((span, false)) => return Some(format!("{}{v}{}", &text[..span.start], &text[span.end..])),
        Some((_, true)) => return None,
        None => {}
    }
    let (last, parents) = keys.split_last()?;
    if parents.is_empty() {
        return None; // a top-level key would have to go before the first table
    }
    if let Some(at) = insertion_point(text, parents) {
        return Some(format!("{}{last} = {v}\n{}", &text[..at], &text[at..]));
    }
    if span_of(text, parents).is_some() {
        return None;
    }
    let sep = if text.ends_with('\n') { "\n" } else { "\n\n" };
    Some(format!("{text}{sep}[{}]\n{last} = {v}\n", parents.join(".")))
}

/// The typed configuration of a table, as `parse_config` reads a file.
fn typed(table: toml::Table, source: &str) -> Result<RunConfig, String> {
    let cfg: RunConfig = Value::Table(table).try_into().map_err(|e: toml::de::Error| e.message().trim().to_string())?;
    cfg.check_version(source).map_err(|e| e.to_string())?;
    Ok(cfg)
}

impl BaseConfig {
    /// Parses the configuration file `text` (named `source` in messages), as a table and
    /// as a typed configuration.
    pub fn parse(text: &str, source: &str) -> Result<Self, SweepError> {
        let config = parse_config(text, source)?;
        crate::validate_run(&config).map_err(|e| SweepError::Train(e.into()))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| SweepError::Train(TrainError::Config { file: source.to_string(), reason: e.to_string() }))?;
        Ok(BaseConfig { text: text.to_string(), source: source.to_string(), table, config })
    }

    /// The file's table with `values` set.
    fn table_with(&self, values: &[(Param, Value)]) -> Result<toml::Table, SweepError> {
        let mut t = self.table.clone();
        for (p, v) in values {
            set(&mut t, &p.keys, v).map_err(|reason| SweepError::Value { param: p.path.clone(), value: value_text(v), reason })?;
        }
        Ok(t)
    }

    /// The original text with `values` set, comments and layout kept (see the module docs).
    pub fn text_with(&self, values: &[(Param, Value)]) -> Result<String, SweepError> {
        let want = self.table_with(values)?;
        let spliced = values.iter().try_fold(self.text.clone(), |text, (p, v)| splice(&text, &p.keys, v));
        if let Some(text) = spliced
            && text.parse::<toml::Table>().is_ok_and(|t| t == want)
        {
            return Ok(text);
        }
        let body = toml::to_string_pretty(&want).map_err(|e| SweepError::State { path: self.source.clone().into(), reason: format!("cannot write the configuration: {e}") })?;
        Ok(format!("# {} with the sweep's values (margin sweep could not keep this file's comments and layout)\n{body}", self.source))
    }

    /// The typed configuration with `values` set, checked as a configuration file is;
    /// errors name the param and the value.
    fn config_with(&self, values: &[(Param, Value)]) -> Result<RunConfig, String> {
        let table = self.table_with(values).map_err(|e| match e {
            SweepError::Value { reason, .. } => reason,
            other => other.to_string(),
        })?;
        let cfg = typed(table.clone(), &self.source)?;
        for (p, _) in values {
            if let Err(e) = check_known(&cfg, &p.keys) {
                // A value equal to a default the written configuration leaves out
                // (`eval.tta = { kind = "none" }`) is known: without the key the
                // configuration is the same.
                let mut without = table.clone();
                if !(remove(&mut without, &p.keys) && typed(without, &self.source).is_ok_and(|c| c == cfg)) {
                    return Err(e);
                }
            }
        }
        crate::validate_run(&cfg).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// Checks every value of every param on its own (so an error names the one param and
    /// value at fault); [`BaseConfig::run_config`] then checks each point (a combination
    /// can be refused where each value alone is fine: `train.schedule.min_lr` above `train.lr`).
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
        assert!(text.contains("classes_per_batch = 3\n") && text.ends_with("[train.schedule]\nkind = \"cosine\"\n"), "{text}");
        // A key the file lacks goes under its table, after the table's last value.
        let g = grid(&["train.loss.swap=true"]);
        let text = b.text_with(&g.points()[0].values).unwrap();
        assert!(text.contains("margin = 0.2 # the margin to tune\nswap = true\n"), "{text}");
        // Where the splice does not apply (a new top-level key), the edited table, said so.
        let g = grid(&["output_root=\"elsewhere\""]);
        let text = b.text_with(&g.points()[0].values).unwrap();
        assert!(text.starts_with("# digits.toml with the sweep's values"), "{text}");
        assert_eq!(parse_config(&text, "best").unwrap().output_root, std::path::PathBuf::from("elsewhere"));
    }

    #[test]
    fn a_value_equal_to_a_default_the_written_configuration_leaves_out_is_known() {
        let b = base();
        let g = grid(&["eval.tta={kind=\"none\"},{kind=\"shifts\",pixels=1}", "train.loss.swap=false"]);
        b.check_grid(&g).unwrap();
        let cfg = b.run_config(&g.points()[1], None).unwrap();
        assert_eq!(cfg.eval.tta, margin_data::tta::TestTimeAugment::Shifts { pixels: 1 });
        // Still refused: a key no configuration has, whatever its value.
        let e = refused(&["eval.ttaa={kind=\"none\"}"]);
        assert!(e.contains("eval.ttaa") && e.contains("unknown"), "{e}");
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
        assert!(e.contains("train.model holds a table"), "{e}");
        // A combination refused where each value alone is fine.
        let b = base();
        let g = grid(&["train.lr=0.0001,0.01", "train.schedule={ kind = \"cosine\", min_lr = 0.0002 }"]);
        b.check_grid(&g).unwrap();
        assert!(b.run_config(&g.points()[1], None).is_ok());
        let e = b.run_config(&g.points()[0], None).unwrap_err().to_string();
        assert!(e.contains("train.lr=0.0001") && e.contains("train.schedule.min_lr"), "{e}");
    }
}
