//! Cross-batch memory (Wang, Zhang, Huang & Scott 2020, "Cross-Batch Memory for
//! Embedding Learning", XBM).
//!
//! Embeddings drift slowly once training has warmed up, so the embeddings of the
//! last few thousand samples, kept *detached*, are almost as good as fresh ones
//! and give every anchor far more positives and negatives than its own batch.
//! [`CrossBatchMemory`] is a FIFO of such embeddings and their labels; each step
//! enqueues the current batch and then computes the loss with the batch as
//! queries and the whole memory as reference set (as PML's `CrossBatchMemory`).
//! The current batch is in the memory too, so the pair of a query with its own
//! detached copy is excluded (it would be a positive at distance 0).

use std::collections::VecDeque;

use burn::tensor::{DType, Tensor, TensorData};
use rand::RngCore;

use crate::error::{MarginError, Result};
use crate::input::{check_embeddings, check_labels};
use crate::loss::{Batch, MetricLoss, Tuples};
use crate::miner::MinerConfig;
use crate::{ContrastiveLoss, LossOutput, ReferenceSet, TripletMarginLoss};

/// A FIFO of detached embeddings and labels used as the reference set.
#[derive(Debug, Clone)]
pub struct CrossBatchMemory {
    capacity: usize,
    dim: Option<usize>,
    rows: VecDeque<(Vec<f64>, i64)>,
}

impl CrossBatchMemory {
    /// An empty memory holding at most `capacity` rows (Wang et al. use about
    /// half the training set on small data, a few thousand rows on large).
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(MarginError::InvalidConfig { field: "capacity", value: "0".into(), reason: "must be ≥ 1" });
        }
        Ok(CrossBatchMemory { capacity, dim: None, rows: VecDeque::with_capacity(capacity) })
    }

    /// Maximum number of rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows held now.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forgets everything (e.g. when the model changes abruptly).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.dim = None;
    }

    /// Labels of the rows, oldest first.
    pub fn labels(&self) -> Vec<i64> {
        self.rows.iter().map(|r| r.1).collect()
    }

    /// Appends detached copies of `embeddings`, evicting the oldest rows beyond
    /// the capacity. Returns, for each input row, the memory row it now
    /// occupies (`None` if it was itself evicted: a batch larger than the memory).
    ///
    /// # Shapes
    /// - `embeddings`: `[b, d]` (every call the same `d`), `labels`: `b` values
    pub fn enqueue(&mut self, embeddings: &Tensor<2>, labels: &[i64]) -> Result<Vec<Option<usize>>> {
        check_embeddings("embeddings", embeddings)?;
        let host = crate::to_host(embeddings);
        check_labels("embeddings", embeddings, "labels", labels)?;
        let [b, d] = embeddings.dims();
        if let Some(dim) = self.dim.filter(|&dim| dim != d) {
            return Err(MarginError::ShapeMismatch {
                input: "embeddings",
                got: vec![b, d],
                expected_from: "cross-batch memory",
                expected: vec![b, dim],
            });
        }
        self.dim = Some(d);
        for (row, &y) in host.chunks(d).zip(labels) {
            if self.rows.len() == self.capacity {
                self.rows.pop_front();
            }
            self.rows.push_back((row.to_vec(), y));
        }
        let len = self.rows.len();
        // Row i of the batch is at len − b + i, unless it was evicted already.
        Ok((0..b).map(|i| (i + len).checked_sub(b)).collect())
    }

    /// The memory as a `[len, d]` tensor (no gradient) on `device` with `dtype`.
    pub fn embeddings(&self, device: &burn::tensor::Device, dtype: DType) -> Option<Tensor<2>> {
        let d = self.dim?;
        let flat: Vec<f64> = self.rows.iter().flat_map(|r| r.0.iter().copied()).collect();
        Some(Tensor::<2>::from_data(TensorData::new(flat, [self.rows.len(), d]), (device, dtype)))
    }

    /// Enqueues the batch, then `loss` of the batch (queries) against the memory
    /// (reference set, with the self map: a query's own copy is never its positive).
    fn step(&mut self, loss: &dyn MetricLoss, embeddings: Tensor<2>, labels: &[i64], tuples: Tuples<'_>) -> Result<LossOutput> {
        let self_index = self.enqueue(&embeddings, labels)?;
        let mem = self.embeddings(&embeddings.device(), embeddings.dtype()).expect("just enqueued");
        let mem_labels = self.labels();
        let batch = Batch::labelled(embeddings, labels)
            .with_reference(ReferenceSet { embeddings: mem, labels: &mem_labels })
            .with_self_index(self_index);
        loss.forward(batch, tuples)
    }

    /// One XBM step with a triplet loss: enqueue the batch, then the loss of the
    /// batch (queries) against the memory (reference), over the `miner`'s tuples
    /// mined against the memory, or every valid triplet without a miner — planned as
    /// [`TripletMarginLoss::forward`] plans (fused, in O(B·M) memory, when it can).
    /// A query's own copy is never its positive.
    ///
    /// `L` as [`TripletMarginLoss::forward`], anchors from the batch, positives and
    /// negatives from the memory.
    ///
    /// # Shapes
    /// - `embeddings`: `[b, d]`, `labels`: `b` → loss `[1]`
    pub fn triplet_loss(
        &mut self,
        loss: &TripletMarginLoss,
        embeddings: Tensor<2>,
        labels: &[i64],
        miner: Option<&MinerConfig>,
        rng: &mut dyn RngCore,
    ) -> Result<LossOutput> {
        let tuples = miner.map_or(Tuples::All, |m| Tuples::mined(m, rng));
        self.step(loss, embeddings, labels, tuples)
    }

    /// One XBM step with a contrastive loss: enqueue, then the loss of the batch
    /// against the memory over the `miner`'s pairs, or every pair without one
    /// (a query's pair with its own copy excluded), planned as [`ContrastiveLoss::forward`].
    ///
    /// `L` as [`ContrastiveLoss::forward`], first elements from the batch, second from
    /// the memory.
    ///
    /// # Shapes
    /// - `embeddings`: `[b, d]`, `labels`: `b` → loss `[1]`
    pub fn contrastive_loss(
        &mut self,
        loss: &ContrastiveLoss,
        embeddings: Tensor<2>,
        labels: &[i64],
        miner: Option<&MinerConfig>,
        rng: &mut dyn RngCore,
    ) -> Result<LossOutput> {
        let tuples = miner.map_or(Tuples::All, |m| Tuples::mined(m, rng));
        self.step(loss, embeddings, labels, tuples)
    }

    /// The memory rows as host values (row-major, `len × d`), oldest first.
    pub fn to_host_rows(&self) -> Vec<Vec<f64>> {
        self.rows.iter().map(|r| r.0.clone()).collect()
    }
}
