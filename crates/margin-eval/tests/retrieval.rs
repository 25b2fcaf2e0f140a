//! Retrieval metrics on hand-made cases and against brute force.

mod common;

use margin_eval::retrieval::query_metrics;
use margin_eval::{Distance, Embeddings, EvalError, Labelled, RetrievalConfig, retrieval};

fn set<'a>(data: &'a [f64], dim: usize, labels: &'a [i64]) -> Labelled<'a, f64> {
    Labelled::new(Embeddings::new("E", data, dim).unwrap(), "L", labels).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn perfect_separation_is_one_everywhere() {
    // Three classes of 4 points, tight and far apart.
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for c in 0..3 {
        for j in 0..4 {
            data.extend([100.0 * c as f64 + 0.01 * j as f64, -50.0 * c as f64]);
            labels.push(c);
        }
    }
    let s = set(&data, 2, &labels);
    for d in [Distance::Euclidean, Distance::SquaredEuclidean] {
        let r = retrieval(&s, None, d, &RetrievalConfig::default()).unwrap();
        assert_eq!(r.k, 3, "k = largest class size − 1 (own row excluded)");
        for v in [
            r.precision_at_1,
            r.precision_at_k,
            r.r_precision,
            r.map_at_r,
            r.mrr.unwrap(),
        ] {
            assert!(close(v, 1.0), "{d}: {r:?}");
        }
        assert!(r.recall_at.iter().all(|x| close(x.value, 1.0)));
        assert_eq!(
            r.recall_at.iter().map(|x| x.k).collect::<Vec<_>>(),
            vec![1, 2, 4, 8]
        );
        assert_eq!(
            (r.n_lone_queries, r.n_evaluated, r.n_r_truncated),
            (0, 12, 0)
        );
    }
    // As a separate reference: each query finds its own copy too, R = 4.
    let r = retrieval(
        &s,
        Some(&s),
        Distance::Euclidean,
        &RetrievalConfig::default(),
    )
    .unwrap();
    assert_eq!(r.k, 4);
    assert!(close(r.map_at_r, 1.0) && close(r.precision_at_k, 1.0) && !r.same_source);
}

/// 1-D points, class A at 0, 1, 3 and class B at 2.2, 10, 11; values worked out by hand
/// (see the table in the comments).
#[test]
fn single_misplaced_point_by_hand() {
    let data = [0.0, 1.0, 3.0, 2.2, 10.0, 11.0];
    let labels = [1, 1, 1, 2, 2, 2];
    // query : ranking (rel)        P@1 RP   MAP@R first
    // A0    : A1 B2.2 A3 (1 0 1)   1   1/2  1/2   1
    // A1    : A0 B2.2 A3 (1 0 1)   1   1/2  1/2   1
    // A3    : B2.2 A1 A0 (0 1 1)   0   1/2  1/4   2
    // B2.2  : A3 A1 A0 B10 (0 0 0 1) 0 0    0     4
    // B10   : B11 A3 B2.2 (1 0 1)  1   1/2  1/2   1
    // B11   : B10 A3 B2.2 (1 0 1)  1   1/2  1/2   1
    let s = set(&data, 1, &labels);
    let cfg = RetrievalConfig {
        k: None,
        recall_ks: vec![1, 2],
        mrr: true,
    };
    let r = retrieval(&s, None, Distance::Euclidean, &cfg).unwrap();
    assert_eq!(r.k, 2);
    assert!(close(r.precision_at_1, 4.0 / 6.0), "{r:?}");
    assert!(close(r.r_precision, 2.5 / 6.0));
    assert!(close(r.precision_at_k, 2.5 / 6.0));
    assert!(close(r.map_at_r, 2.25 / 6.0));
    assert!(close(r.recall_at[0].value, 4.0 / 6.0) && close(r.recall_at[1].value, 5.0 / 6.0));
    assert!(close(r.mrr.unwrap(), (4.0 + 0.5 + 0.25) / 6.0));
    assert_eq!(
        r.n_full_rank_queries, 1,
        "B2.2's first match lies beyond the top 2"
    );
}

#[test]
fn query_metrics_by_hand() {
    // Musgrave et al. 2020 MAP@R: mean over i ≤ R of precision@i at correct positions.
    let m = query_metrics(&[true, false, true, true], 4, 4);
    assert!(close(m.map_at_r, (1.0 + 2.0 / 3.0 + 3.0 / 4.0) / 4.0));
    assert!(close(m.r_precision, 0.75) && close(m.p1, 1.0) && close(m.pk, 0.75));
    // Paper's example: R = 10, only the first retrieved is correct → MAP@R = R-Precision = 0.1.
    let mut rel = vec![false; 10];
    rel[0] = true;
    let m = query_metrics(&rel, 10, 10);
    assert!(close(m.map_at_r, 0.1) && close(m.r_precision, 0.1) && close(m.p1, 1.0));
    // Last position correct only: MAP@R = (1/10)(1/10).
    let mut rel = vec![false; 10];
    rel[9] = true;
    assert!(close(query_metrics(&rel, 10, 10).map_at_r, 0.01));
    // R > k: PML truncates the relevance mask to k.
    let m = query_metrics(&[true, true, false], 5, 3);
    assert!(close(m.map_at_r, 2.0 / 3.0) && close(m.r_precision, 2.0 / 3.0));
}

#[test]
fn lone_queries_are_excluded_and_counted() {
    // Label 9 occurs once: that query has no same-label reference.
    let data = [0.0, 0.1, 5.0, 5.1, 2.5];
    let labels = [1, 1, 2, 2, 9];
    let s = set(&data, 1, &labels);
    let r = retrieval(&s, None, Distance::Euclidean, &RetrievalConfig::default()).unwrap();
    assert_eq!((r.n_lone_queries, r.n_evaluated), (1, 4));
    assert!(close(r.map_at_r, 1.0) && close(r.precision_at_1, 1.0));
    // Separate reference lacking label 3.
    let q = [0.05, 7.0];
    let ql = [1, 3];
    let qs = set(&q, 1, &ql);
    let r = retrieval(
        &qs,
        Some(&s),
        Distance::Euclidean,
        &RetrievalConfig::default(),
    )
    .unwrap();
    assert_eq!((r.n_lone_queries, r.n_evaluated, r.k), (1, 1, 2));
    // Everything lone is an error, not a zero.
    let ql = [7, 8];
    let qs = set(&q, 1, &ql);
    assert!(matches!(
        retrieval(
            &qs,
            Some(&s),
            Distance::Euclidean,
            &RetrievalConfig::default()
        ),
        Err(EvalError::NotEnoughData { .. })
    ));
}

#[test]
fn k_too_large_and_dimension_errors() {
    let data = [0.0, 0.1, 5.0, 5.1];
    let labels = [1, 1, 2, 2];
    let s = set(&data, 1, &labels);
    let cfg = RetrievalConfig {
        k: Some(4),
        ..Default::default()
    };
    let e = retrieval(&s, None, Distance::Euclidean, &cfg).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::KTooLarge {
                k: 4,
                available: 3,
                ..
            }
        ),
        "{e}"
    );
    let d2 = [0.0, 0.0, 1.0, 1.0];
    let s2 = Labelled::new(
        Embeddings::new("R.npy", &d2, 2).unwrap(),
        "RL",
        &labels[..2],
    )
    .unwrap();
    assert!(matches!(
        retrieval(&s, Some(&s2), Distance::Cosine, &Default::default()),
        Err(EvalError::DimensionMismatch { .. })
    ));
}

/// Brute-force metrics: full sorted ranking in f64 per query.
fn brute(data: &[f64], d: usize, labels: &[i64], k: usize, dist: Distance) -> (f64, f64, f64, f64) {
    let n = labels.len();
    let (mut p1, mut rp, mut map, mut mrr, mut ne) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for q in 0..n {
        let r = labels
            .iter()
            .enumerate()
            .filter(|&(j, &l)| j != q && l == labels[q])
            .count();
        if r == 0 {
            continue;
        }
        ne += 1.0;
        let mut c: Vec<(usize, f64)> = (0..n)
            .filter(|&j| j != q)
            .map(|j| (j, dist.between(&data[q * d..][..d], &data[j * d..][..d])))
            .collect();
        c.sort_by(|a, b| {
            let o = if dist.higher_is_closer() {
                b.1.partial_cmp(&a.1)
            } else {
                a.1.partial_cmp(&b.1)
            };
            o.unwrap().then(a.0.cmp(&b.0))
        });
        let rel: Vec<bool> = c.iter().map(|&(j, _)| labels[j] == labels[q]).collect();
        let m = query_metrics(&rel, r, k);
        p1 += m.p1;
        rp += m.r_precision;
        map += m.map_at_r;
        mrr += 1.0 / (rel.iter().position(|&x| x).unwrap() + 1) as f64;
    }
    (p1 / ne, rp / ne, map / ne, mrr / ne)
}

#[test]
fn equals_brute_force_on_random_data() {
    let d = 6;
    let (data, labels) = common::clustered(7, 13, d, 1.5, 11);
    let s = set(&data, d, &labels);
    for dist in Distance::ALL {
        for k in [3, 12] {
            let cfg = RetrievalConfig {
                k: Some(k),
                recall_ks: vec![1],
                mrr: true,
            };
            let r = retrieval(&s, None, dist, &cfg).unwrap();
            let (p1, rp, map, mrr) = brute(&data, d, &labels, k, dist);
            assert!(
                close(r.precision_at_1, p1) && close(r.r_precision, rp) && close(r.map_at_r, map),
                "{dist} k={k}: {r:?}"
            );
            assert!(
                close(r.mrr.unwrap(), mrr),
                "{dist} k={k}: mrr {} vs {mrr}",
                r.mrr.unwrap()
            );
            if k == 3 {
                assert!(
                    r.n_full_rank_queries > 0,
                    "the test should exercise the full-rank pass"
                );
            }
        }
    }
}
