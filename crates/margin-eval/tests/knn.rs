//! The tiled GEMM search equals brute force.

mod common;

use margin_eval::{Distance, Embeddings, EvalError, KnnOptions, knn, knn_with};

/// Brute force in f64: sort all candidates by (value, index) with the
/// distance's orientation.
fn brute(
    q: &[f64],
    r: &[f64],
    d: usize,
    k: usize,
    dist: Distance,
    same: bool,
) -> Vec<Vec<(usize, f64)>> {
    let n = q.len() / d;
    let m = r.len() / d;
    (0..n)
        .map(|i| {
            let mut c: Vec<(usize, f64)> = (0..m)
                .filter(|&j| !(same && i == j))
                .map(|j| {
                    (
                        j,
                        dist.between(&q[i * d..(i + 1) * d], &r[j * d..(j + 1) * d]),
                    )
                })
                .collect();
            c.sort_by(|a, b| {
                let o = if dist.higher_is_closer() {
                    b.1.partial_cmp(&a.1)
                } else {
                    a.1.partial_cmp(&b.1)
                };
                o.unwrap().then(a.0.cmp(&b.0))
            });
            c.truncate(k);
            c
        })
        .collect()
}

fn check(q: &[f64], r: Option<&[f64]>, d: usize, k: usize, opts: &KnnOptions) {
    let qe = Embeddings::new("query", q, d).unwrap();
    let re = r.map(|r| Embeddings::new("reference", r, d).unwrap());
    for dist in Distance::ALL {
        let got = knn_with(&qe, re.as_ref(), k, dist, opts).unwrap();
        let want = brute(q, r.unwrap_or(q), d, k, dist, r.is_none());
        for (i, w) in want.iter().enumerate() {
            let idx: Vec<usize> = got.indices_of(i).iter().map(|&x| x as usize).collect();
            let wi: Vec<usize> = w.iter().map(|x| x.0).collect();
            assert_eq!(idx, wi, "{dist} query {i} opts {opts:?}");
            for (g, (_, wv)) in got.values_of(i).iter().zip(w) {
                assert!(
                    (g - wv).abs() < 1e-9 * (1.0 + wv.abs()),
                    "{dist} query {i}: {g} vs {wv}"
                );
            }
        }
    }
}

#[test]
fn equals_brute_force_separate_reference() {
    let d = 7;
    let q = common::random_matrix(45, d, 1);
    let r = common::random_matrix(131, d, 2);
    for opts in [
        KnnOptions::default(),
        KnnOptions {
            query_block: 4,
            reference_block: 16,
        },
        KnnOptions {
            query_block: 1,
            reference_block: 17,
        },
    ] {
        for k in [1, 5, 131] {
            check(&q, Some(&r), d, k, &opts);
        }
    }
}

#[test]
fn equals_brute_force_self_excluded() {
    let d = 9;
    let q = common::random_matrix(203, d, 3);
    for opts in [
        KnnOptions::default(),
        KnnOptions {
            query_block: 7,
            reference_block: 33,
        },
    ] {
        for k in [1, 3, 20, 202] {
            check(&q, None, d, k, &opts);
        }
    }
}

#[test]
fn f32_agrees_with_f64_on_separated_data() {
    let d = 16;
    let q = common::random_matrix(300, d, 4);
    let q32: Vec<f32> = q.iter().map(|&x| x as f32).collect();
    let e64 = Embeddings::new("q", &q, d).unwrap();
    let e32 = Embeddings::new("q", &q32, d).unwrap();
    for dist in Distance::ALL {
        let a = knn(&e64, None, 1, dist).unwrap();
        let b = knn(&e32, None, 1, dist).unwrap();
        let same = a
            .indices
            .iter()
            .zip(&b.indices)
            .filter(|(x, y)| x == y)
            .count();
        assert!(same >= 298, "{dist}: only {same} of 300 agree");
    }
}

#[test]
fn ties_are_broken_by_index_and_self_excluded_by_index() {
    // Rows 0, 2 and 3 are identical; row 1 is far away.
    let data = [1.0f64, 1.0, 9.0, -2.0, 1.0, 1.0, 1.0, 1.0];
    let e = Embeddings::new("dups", &data, 2).unwrap();
    for dist in [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Cosine,
    ] {
        let nb = knn(&e, None, 2, dist).unwrap();
        assert_eq!(nb.indices_of(0), &[2, 3], "{dist}");
        assert_eq!(nb.indices_of(2), &[0, 3], "{dist}");
        assert_eq!(nb.indices_of(3), &[0, 2], "{dist}");
    }
}

#[test]
fn typed_errors() {
    let q = common::random_matrix(10, 3, 5);
    let r = common::random_matrix(10, 4, 6);
    let qe = Embeddings::new("Q.npy", &q, 3).unwrap();
    let re = Embeddings::new("R.npy", &r, 4).unwrap();
    let e = knn(&qe, Some(&re), 1, Distance::Euclidean).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::DimensionMismatch {
                query_dim: 3,
                reference_dim: 4,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("Q.npy") && e.to_string().contains("R.npy"));
    let e = knn(&qe, None, 10, Distance::Euclidean).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::KTooLarge {
                k: 10,
                available: 9,
                ..
            }
        ),
        "{e}"
    );
    assert!(knn(&qe, None, 9, Distance::Euclidean).is_ok());
    assert!(matches!(
        knn(&qe, None, 0, Distance::Dot).unwrap_err(),
        EvalError::InvalidParameter { .. }
    ));
}

/// Small-integer f32 data: every inner product and norm is exact in f32, so the
/// f32 search (AVX2 scan where available) must reproduce the f64 brute force
/// exactly, including its many ties (broken by index).
#[test]
fn f32_integer_data_with_ties_equals_brute_force_exactly() {
    let d = 5;
    let n = 150;
    let q64: Vec<f64> = common::random_matrix(n, d, 21)
        .iter()
        .map(|v| (v * 3.0).round())
        .collect();
    let r64: Vec<f64> = common::random_matrix(97, d, 22)
        .iter()
        .map(|v| (v * 3.0).round())
        .collect();
    let q32: Vec<f32> = q64.iter().map(|&v| v as f32).collect();
    let r32: Vec<f32> = r64.iter().map(|&v| v as f32).collect();
    let qe = Embeddings::new("q", &q32, d).unwrap();
    let re = Embeddings::new("r", &r32, d).unwrap();
    for dist in [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Dot,
    ] {
        for opts in [
            KnnOptions::default(),
            KnnOptions {
                query_block: 3,
                reference_block: 40,
            },
        ] {
            for (refe, refd, same) in [(None, &q64, true), (Some(&re), &r64, false)] {
                let m = refd.len() / d;
                for k in [1, 7, 33, m - usize::from(same)] {
                    let got = knn_with(&qe, refe, k, dist, &opts).unwrap();
                    let want = brute(&q64, refd, d, k, dist, same);
                    for (i, w) in want.iter().enumerate() {
                        let wi: Vec<u32> = w.iter().map(|x| x.0 as u32).collect();
                        assert_eq!(
                            got.indices_of(i),
                            &wi[..],
                            "{dist} k={k} same={same} query {i}"
                        );
                        for (g, (_, wv)) in got.values_of(i).iter().zip(w) {
                            assert!(
                                (f64::from(*g) - wv).abs() < 1e-4 * (1.0 + wv.abs()),
                                "{dist}: {g} vs {wv}"
                            );
                        }
                    }
                }
            }
        }
    }
}
