//! `margin search`: the k nearest items of an index for each query row.
//!
//! Output, one record per query in input order, neighbours nearest first (ties by the
//! index's slot order, margin-search's rule); distances smaller-is-closer in the index
//! metric's unit:
//! - text (default): a block per query;
//! - `--json`: one JSON array, `{"query": <row number, or id>, "neighbors": [{"id", "distance"
//!   [, "match"]}]}` per query (`"match"` only when a threshold is in force);
//! - `--jsonl`: the same objects, one per line (streams: nothing held but one query's);
//! - `--csv`: `query,rank,id,distance[,match]`, a header row, quoted by the csv crate.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use margin_search::{Expect, Index, Rows, SearchParams};
use serde::Serialize;

use super::threshold::{Threshold, ThresholdArgs, resolve};
use super::model_input::{ModelArgs, load};
use super::vectors::{open_index, read_ids};

/// Refuses an index built by another model than the one embedding the queries (or one
/// whose model is unknown: precomputed embeddings without a fingerprint).
pub fn check_model(index: &dyn Index, path: &std::path::Path, fingerprint: Option<&str>) -> Result<()> {
    let Some(fp) = fingerprint else { return Ok(()) };
    if index.fingerprint().is_empty() {
        bail!(
            "{}: the index records no model (built from precomputed embeddings), so it cannot be checked against --model; \
             rebuild it with `margin index build --model RUN --input …`, or search it with --queries",
            path.display()
        );
    }
    if index.fingerprint() != fp {
        return Err(margin_search::SearchError::ModelMismatch { path: path.into(), expected: fp.into(), found: index.fingerprint().into() }.into());
    }
    Ok(())
}

/// Arguments of `margin search`.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// The index to search (`margin index build`).
    #[arg(long, value_name = "INDEX")]
    pub index: PathBuf,
    /// Query embeddings (.npy, rows × dim, the index's dimension).
    #[arg(long, value_name = "Q.npy", required_unless_present = "model")]
    pub queries: Option<PathBuf>,
    /// The queries' ids (one per line), used as "query" in the output; default: row
    /// numbers (with --model: the input's image paths).
    #[arg(long, value_name = "ids.txt")]
    pub query_ids: Option<PathBuf>,
    /// Embed the queries with this model (the index must have been built by it).
    #[command(flatten)]
    pub source: ModelArgs,
    /// Neighbours per query (at most the number of candidates).
    #[arg(short, long, default_value_t = 10, value_parser = crate::flags::count)]
    pub k: usize,
    /// HNSW beam width (larger: better recall, slower); at least k is used.
    #[arg(long, default_value_t = 64, value_parser = crate::flags::count)]
    pub ef: usize,
    /// Only return items with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "T")]
    pub tag: Vec<String>,
    #[command(flatten)]
    pub threshold: ThresholdArgs,
    /// One JSON array on stdout.
    #[arg(long, group = "format")]
    pub json: bool,
    /// One JSON object per line.
    #[arg(long, group = "format")]
    pub jsonl: bool,
    /// CSV: query,rank,id,distance[,match].
    #[arg(long, group = "format")]
    pub csv: bool,
}

/// A query's id in the output: its row number, or its id.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum QueryName {
    /// Row number.
    Row(usize),
    /// The id from --query-ids.
    Id(String),
}

impl std::fmt::Display for QueryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryName::Row(r) => write!(f, "{r}"),
            QueryName::Id(s) => f.write_str(s),
        }
    }
}

/// One neighbour in the output.
#[derive(Serialize, Debug, PartialEq)]
pub struct Neighbor<'a> {
    /// The item's id.
    pub id: &'a str,
    /// Its distance to the query.
    pub distance: f32,
    /// Whether the distance is within the threshold (only with a threshold).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub is_match: Option<bool>,
}

/// One query's record.
#[derive(Serialize, Debug, PartialEq)]
pub struct Record<'a> {
    /// The query.
    pub query: QueryName,
    /// Its neighbours, nearest first.
    pub neighbors: Vec<Neighbor<'a>>,
}

/// The records of a search, in query order.
pub fn records<'a>(index: &'a dyn Index, nb: &margin_search::Neighbours, names: &[QueryName], t: Option<&Threshold>) -> Vec<Record<'a>> {
    (0..nb.len())
        .map(|q| {
            let (slots, dists) = nb.get(q);
            let neighbors = slots.iter().zip(dists).map(|(&s, &d)| Neighbor { id: index.id(s), distance: d, is_match: t.map(|t| t.matches(d)) }).collect();
            Record { query: names[q].clone(), neighbors }
        })
        .collect()
}

fn write_csv(out: &mut dyn Write, recs: &[Record], with_match: bool) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut head = vec!["query", "rank", "id", "distance"];
    if with_match {
        head.push("match");
    }
    w.write_record(&head)?;
    for r in recs {
        for (rank, n) in r.neighbors.iter().enumerate() {
            let mut row = vec![r.query.to_string(), (rank + 1).to_string(), n.id.to_string(), n.distance.to_string()];
            if let Some(m) = n.is_match {
                row.push(m.to_string());
            }
            w.write_record(&row)?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Prints records in the chosen format.
pub fn print(recs: &[Record], a: &SearchArgs, t: Option<&Threshold>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if a.json {
        serde_json::to_writer(&mut out, recs)?;
        writeln!(out)?;
    } else if a.jsonl {
        for r in recs {
            serde_json::to_writer(&mut out, r)?;
            writeln!(out)?;
        }
    } else if a.csv {
        write_csv(&mut out, recs, t.is_some())?;
    } else {
        if let Some(t) = t {
            writeln!(out, "threshold {} (from {}): a neighbour matches at distance <= {}", t.value, t.source, t.value)?;
        }
        for r in recs {
            writeln!(out, "query {}:", r.query)?;
            for (rank, n) in r.neighbors.iter().enumerate() {
                let m = n.is_match.map_or(String::new(), |m| if m { "  match".into() } else { "  no match".into() });
                writeln!(out, "  {:>3}  {:<24} {:.6}{m}", rank + 1, n.id, n.distance)?;
            }
        }
    }
    out.flush()?;
    if (a.json || a.jsonl || a.csv)
        && let Some(t) = t
    {
        eprintln!("threshold {} from {}", t.value, t.source);
    }
    Ok(())
}

/// Query names: ids from a file, or row numbers.
pub fn query_names(ids: Option<&std::path::Path>, n: usize, input: &str) -> Result<Vec<QueryName>> {
    Ok(match ids {
        Some(p) => {
            let ids = read_ids(p)?;
            ids.check_count(input, n)?;
            ids.names().iter().cloned().map(QueryName::Id).collect()
        }
        None => (0..n).map(QueryName::Row).collect(),
    })
}

/// Runs `margin search`.
pub fn run(a: SearchArgs) -> Result<()> {
    let v = load(a.queries.as_deref(), a.query_ids.as_deref(), &a.source, "--queries")?;
    let (input, data, dim) = (v.input.clone(), &v.data, v.dim);
    let index = open_index(&a.index, &Expect::default())?;
    let index = index.as_index();
    check_model(index, &a.index, v.fingerprint.as_deref())?;
    if index.is_empty() {
        bail!("{}: the index is empty (every item was removed): nothing to search", a.index.display());
    }
    let names = match (&a.query_ids, v.fingerprint.is_some()) {
        (None, true) if v.ids.input() != "row numbers" => v.ids.names().iter().cloned().map(QueryName::Id).collect(),
        _ => query_names(a.query_ids.as_deref(), v.n, &input)?,
    };
    let card = v.card_thresholds(index.metric());
    let t = resolve(&a.threshold, card.as_ref().map(|c| c as &dyn super::threshold::CardThresholds))?;
    let params = SearchParams { ef: a.ef, tags: (!a.tag.is_empty()).then(|| a.tag.clone()) };
    let nb = index.search(Rows::new(&input, data, dim), a.k, &params)?;
    print(&records(index, &nb, &names, t.as_ref()), &a, t.as_ref())
}
