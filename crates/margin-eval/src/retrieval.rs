//! Retrieval metrics from labels: P@1, P@k, R@k, R-Precision, MAP@R, MRR.
//!
//! Definitions (per query `q`, with `rel(i) = 1` when the `i`-th retrieved
//! reference has `q`'s label, `R` = number of references with `q`'s label,
//! excluding `q` itself when the reference is the query set):
//!
//! - **precision@1** = `rel(1)`; pytorch-metric-learning (PML)
//!   `AccuracyCalculator` `precision_at_1`.
//! - **precision@k** = `(1/k) Σ_{i≤k} rel(i)` (standard IR definition; it is
//!   below 1 for a class smaller than k even when retrieval is perfect).
//! - **recall@k** = 1 if any of the top k has `q`'s label, else 0: the "R@K"
//!   of deep metric learning papers (Song et al. 2016, "Deep Metric Learning
//!   via Lifted Structured Feature Embedding"), not IR recall.
//! - **R-Precision** = `(1/R) Σ_{i≤R} rel(i)`; PML `r_precision`.
//! - **MAP@R** = `(1/R) Σ_{i≤R} P(i)·rel(i)` with `P(i)` the precision at
//!   `i`; Musgrave, Belongie & Lim 2020, "A Metric Learning Reality Check",
//!   §3.2, and PML `mean_average_precision_at_r`. As in PML, when `R > k`
//!   both R-based metrics use `min(R, k)` (counted in
//!   [`RetrievalReport::n_r_truncated`]); the default k is the largest `R`,
//!   so nothing is truncated.
//! - **MRR** = `1/rank` of the first reference with `q`'s label in the full
//!   ranking of all references (not truncated at k; see [`crate::rank`]).
//!
//! Averages are over queries (PML's default `avg_of_avgs = False`). Queries
//! with `R = 0` ("lone" queries: no other reference shares the label) are
//! excluded from every average and counted in [`RetrievalReport::n_lone_queries`],
//! as PML does with its `not_lone_query_mask`.

use serde::{Deserialize, Serialize};

use crate::data::{ClassIndex, Labelled};
use crate::distance::Distance;
use crate::error::{EvalError, Result, invalid};
use crate::knn::{KnnOptions, Neighbors, Space, search};
use crate::rank::first_relevant_ranks;
use margin_linalg::Real;

/// What to compute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalConfig {
    /// Neighbours used for P@k, R-Precision and MAP@R. `None`: the largest
    /// `R` over the queries (PML's `k = "max_bin_count"`).
    pub k: Option<usize>,
    /// The k of each recall@k (default 1, 2, 4, 8). Values above the number
    /// of candidates are skipped.
    pub recall_ks: Vec<usize>,
    /// Whether to compute the untruncated mean reciprocal rank.
    pub mrr: bool,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            k: None,
            recall_ks: vec![1, 2, 4, 8],
            mrr: true,
        }
    }
}

/// Recall@k for one k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecallAt {
    /// The k.
    pub k: usize,
    /// Fraction of evaluated queries with a same-label reference in the top k.
    pub value: f64,
}

/// Retrieval metrics over the evaluated (non-lone) queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalReport {
    /// Distance used for ranking.
    pub distance: Distance,
    /// Number of queries.
    pub n_queries: usize,
    /// Number of reference rows.
    pub n_references: usize,
    /// Whether the reference is the query set (own row excluded).
    pub same_source: bool,
    /// Queries without any same-label reference, excluded from the averages.
    pub n_lone_queries: usize,
    /// Queries averaged over (`n_queries − n_lone_queries`).
    pub n_evaluated: usize,
    /// k used for precision@k, R-Precision and MAP@R.
    pub k: usize,
    /// Mean precision@1.
    pub precision_at_1: f64,
    /// Mean precision@k.
    pub precision_at_k: f64,
    /// Recall@k for each requested k.
    pub recall_at: Vec<RecallAt>,
    /// Mean R-Precision.
    pub r_precision: f64,
    /// Mean MAP@R.
    pub map_at_r: f64,
    /// Evaluated queries whose R exceeded k (R-based metrics truncated to k).
    pub n_r_truncated: usize,
    /// Mean reciprocal rank over the full ranking, if requested.
    pub mrr: Option<f64>,
    /// Queries whose first match lay beyond the searched neighbours and
    /// needed a full-ranking pass for MRR.
    pub n_full_rank_queries: usize,
}

/// Retrieval metrics of `query` against `reference` (or against itself,
/// excluding each query's own row, when `reference` is `None`).
pub fn retrieval<T: Real>(
    query: &Labelled<T>,
    reference: Option<&Labelled<T>>,
    distance: Distance,
    config: &RetrievalConfig,
) -> Result<RetrievalReport> {
    retrieval_with_neighbors(query, reference, distance, config).map(|(r, _)| r)
}

/// [`retrieval`], also returning the neighbours searched (k = max of the
/// metric k and the recall ks), e.g. to show examples in a report.
pub fn retrieval_with_neighbors<T: Real>(
    query: &Labelled<T>,
    reference: Option<&Labelled<T>>,
    distance: Distance,
    config: &RetrievalConfig,
) -> Result<(RetrievalReport, Neighbors<T>)> {
    let space = Space::new(
        &query.embeddings,
        reference.map(|r| &r.embeddings),
        distance,
    )?;
    let same_source = reference.is_none();
    let ref_labels = reference.unwrap_or(query).labels();
    let ref_name = reference.unwrap_or(query).embeddings.name().to_string();
    let classes = ClassIndex::new(ref_labels);
    let q_class: Vec<u32> = if same_source {
        classes.ids.clone()
    } else {
        let lookup = classes.lookup();
        query
            .labels()
            .iter()
            .map(|l| lookup.get(l).copied().unwrap_or(u32::MAX))
            .collect()
    };
    let r_of = |q: usize| -> usize {
        let c = q_class[q];
        if c == u32::MAX {
            0
        } else {
            classes.members[c as usize].len() - usize::from(same_source)
        }
    };
    let n = query.embeddings.rows();
    let max_r = (0..n).map(r_of).max().unwrap_or(0);
    let n_lone = (0..n).filter(|&q| r_of(q) == 0).count();
    if n_lone == n {
        return Err(EvalError::NotEnoughData {
            input: query.labels_name().to_string(),
            reason: "no query has a reference with the same label".into(),
        });
    }
    let available = space.available();
    let k = config.k.unwrap_or(max_r);
    if k == 0 {
        return Err(invalid("k", "must be at least 1"));
    }
    if k > available {
        return Err(EvalError::KTooLarge {
            k,
            available,
            input: ref_name,
        });
    }
    let recall_ks: Vec<usize> = config
        .recall_ks
        .iter()
        .copied()
        .filter(|&r| r >= 1 && r <= available)
        .collect();
    let k_search = recall_ks.iter().copied().fold(k, usize::max);
    let nb = search(&space, k_search, &KnnOptions::default());

    let mut acc = Sums {
        recall: vec![0.0; recall_ks.len()],
        ..Default::default()
    };
    let mut need_rank = Vec::new();
    let mut ranks = vec![0u64; n];
    for q in 0..n {
        let r = r_of(q);
        if r == 0 {
            continue;
        }
        let c = q_class[q];
        let rel: Vec<bool> = nb
            .indices_of(q)
            .iter()
            .map(|&j| classes.ids[j as usize] == c)
            .collect();
        acc.add(&rel, r, k, &recall_ks);
        match rel.iter().position(|&x| x) {
            Some(p) => ranks[q] = p as u64 + 1,
            None => need_rank.push(q as u32),
        }
    }
    let mut mrr = None;
    if config.mrr {
        let far = first_relevant_ranks(&space, &need_rank, &q_class, &classes.members);
        for (&q, &rk) in need_rank.iter().zip(&far) {
            ranks[q as usize] = rk;
        }
        let sum: f64 = (0..n)
            .filter(|&q| r_of(q) > 0)
            .map(|q| 1.0 / ranks[q] as f64)
            .sum();
        mrr = Some(sum);
    }
    let ne = (n - n_lone) as f64;
    let report = RetrievalReport {
        distance,
        n_queries: n,
        n_references: space.reference().rows,
        same_source,
        n_lone_queries: n_lone,
        n_evaluated: n - n_lone,
        k,
        precision_at_1: acc.p1 / ne,
        precision_at_k: acc.pk / ne,
        recall_at: recall_ks
            .iter()
            .zip(&acc.recall)
            .map(|(&k, &v)| RecallAt { k, value: v / ne })
            .collect(),
        r_precision: acc.rprec / ne,
        map_at_r: acc.map_r / ne,
        n_r_truncated: acc.truncated,
        mrr: mrr.map(|s| s / ne),
        n_full_rank_queries: if config.mrr { need_rank.len() } else { 0 },
    };
    Ok((report, nb))
}

/// Running sums of the per-query metrics.
#[derive(Default)]
struct Sums {
    p1: f64,
    pk: f64,
    recall: Vec<f64>,
    rprec: f64,
    map_r: f64,
    truncated: usize,
}

impl Sums {
    /// Adds one query: `rel` over its searched neighbours, `r` relevant
    /// references, metric cut-off `k`.
    fn add(&mut self, rel: &[bool], r: usize, k: usize, recall_ks: &[usize]) {
        let metrics = query_metrics(rel, r, k);
        self.p1 += metrics.p1;
        self.pk += metrics.pk;
        self.rprec += metrics.r_precision;
        self.map_r += metrics.map_at_r;
        self.truncated += usize::from(r > k);
        for (s, &rk) in self.recall.iter_mut().zip(recall_ks) {
            *s += f64::from(u8::from(rel[..rk].iter().any(|&x| x)));
        }
    }
}

/// Per-query metric values (see the module docs for definitions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QueryMetrics {
    /// precision@1.
    pub p1: f64,
    /// precision@k.
    pub pk: f64,
    /// R-Precision (with R truncated to k).
    pub r_precision: f64,
    /// MAP@R (with R truncated to k).
    pub map_at_r: f64,
}

/// Metrics of one query from its relevance list `rel` (best first, at least
/// `k` long), its number of relevant references `r ≥ 1`, and cut-off `k ≥ 1`.
/// Degenerate arguments (`r = 0`, `k = 0` or empty `rel`) give all zeros.
pub fn query_metrics(rel: &[bool], r: usize, k: usize) -> QueryMetrics {
    let rr = r.min(k).min(rel.len());
    if rr == 0 {
        return QueryMetrics {
            p1: 0.0,
            pk: 0.0,
            r_precision: 0.0,
            map_at_r: 0.0,
        };
    }
    let mut hits = 0usize;
    let mut ap = 0.0;
    for (i, &x) in rel[..rr].iter().enumerate() {
        if x {
            hits += 1;
            ap += hits as f64 / (i + 1) as f64;
        }
    }
    let kk = k.min(rel.len());
    let in_k = rel[..kk].iter().filter(|&&x| x).count();
    QueryMetrics {
        p1: f64::from(u8::from(rel.first().copied().unwrap_or(false))),
        pk: in_k as f64 / k as f64,
        r_precision: hits as f64 / rr as f64,
        map_at_r: ap / rr as f64,
    }
}
