//! Exact rank of the first relevant reference in the full (untruncated) ranking.
//!
//! Mean reciprocal rank needs, for every query, the position of its first
//! same-label reference among *all* references. Most queries find one inside
//! their top k, where the position is already known. For the others this
//! pass scores the query against every reference (same GEMM, same bias, so
//! the very same score values), takes the best same-label score `s*` with its
//! index `j*`, and counts the references that rank before it:
//! `rank = 1 + #{j : s_j > s* or (s_j = s* and j < j*)}`, the same order the
//! top-k search uses. The cost is one GEMM row per such query; memory is a
//! block of full score rows capped at [`ROW_BUDGET`] values.

use rayon::prelude::*;

use crate::knn::Space;
use margin_linalg::Real;
use margin_linalg::topk::better;

/// Maximum number of scores held per block of full rows.
pub const ROW_BUDGET: usize = 1 << 22;

/// For each query in `queries`, the 1-based rank of its first reference of
/// the same class in the full ranking. `r_members[c]` lists the reference
/// rows of class `c` (ascending); `q_class[q]` is the class of query `q`, or
/// `u32::MAX` for a class absent from the reference. Queries without any
/// same-class candidate get rank 0.
pub(crate) fn first_relevant_ranks<T: Real>(
    space: &Space<T>,
    queries: &[u32],
    q_class: &[u32],
    r_members: &[Vec<u32>],
) -> Vec<u64> {
    let m = space.reference().rows;
    let d = space.q.dim;
    let block = (ROW_BUDGET / m.max(1)).clamp(1, 64);
    let mut out = vec![0u64; queries.len()];
    out.par_chunks_mut(block)
        .zip(queries.par_chunks(block))
        .for_each(|(out, qids)| {
            let nq = qids.len();
            let mut qblock = Vec::with_capacity(nq * d);
            for &q in qids {
                qblock.extend_from_slice(space.q.row(q as usize));
            }
            let mut buf = vec![T::ZERO; nq * m];
            space.score_tile(&qblock, qids, 0, m, &mut buf, true);
            for ((o, &q), row) in out.iter_mut().zip(qids).zip(buf.chunks_exact(m)) {
                let class = q_class[q as usize];
                let Some(members) = r_members.get(class as usize) else {
                    continue;
                };
                let mut best: Option<(T, u32)> = None;
                for &j in members {
                    let s = row[j as usize];
                    if s == T::NEG_INFINITY {
                        continue; // the query itself
                    }
                    if best.is_none_or(|(bs, bj)| better(s, j, bs, bj)) {
                        best = Some((s, j));
                    }
                }
                let Some((bs, bj)) = best else { continue };
                let mut before = 0u64;
                for (j, &s) in row.iter().enumerate() {
                    before += u64::from(s > bs || (s == bs && (j as u32) < bj));
                }
                *o = before + 1;
            }
        });
    out
}
