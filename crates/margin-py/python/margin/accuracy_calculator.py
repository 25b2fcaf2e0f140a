"""A drop-in for ``pytorch_metric_learning.utils.accuracy_calculator.AccuracyCalculator``.

Switch with one import line::

    from margin import AccuracyCalculator   # was: from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

Same constructor keywords (``include``, ``exclude``, ``avg_of_avgs``, ``return_per_class``,
``k`` — an int, ``"max_bin_count"`` or ``None``), same ``get_accuracy`` signature, same
metric names, same values (PML 2.9's semantics: exact L2 search on the vectors as given, no
normalisation; lone queries — no other reference with their label — excluded;
``ref_includes_query``; per-class averages). What differs:

- the search is margin-eval's tiled exact kNN (no faiss, never an n × m matrix), run in the
  input's precision (PML casts to float32): on float64 input a near-tie may rank differently;
- ``NMI``/``AMI`` come from margin's seeded k-means++ (PML: faiss k-means, unseeded), so they
  may differ from PML's by the clustering found; pass ``seed`` to choose it;
- ``label_comparison_fn``, ``device``, ``knn_func`` and ``kmeans_func`` are not supported
  (a custom one raises ``NotImplementedError``); labels are 1-D integers;
- an integer ``k`` larger than the reference can supply raises ``ValueError`` (PML pads with
  faiss's ``-1`` indices and computes on them);
- if every query is lone, PML's ``nan`` results are returned as PML does.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from . import _arrays, _margin

_LOG = logging.getLogger("margin")

# PML's metrics, in its dict order (dir() order: upper case first).
METRICS = (
    "AMI",
    "NMI",
    "mean_average_precision",
    "mean_average_precision_at_r",
    "mean_reciprocal_rank",
    "precision_at_1",
    "r_precision",
)
_KNN = ("mean_average_precision", "mean_average_precision_at_r", "mean_reciprocal_rank", "precision_at_1", "r_precision")
_CLUSTERING = ("NMI", "AMI")


class AccuracyCalculator:
    """PML's ``AccuracyCalculator`` over margin-eval (see the module docs for what differs)."""

    def __init__(
        self,
        include=(),
        exclude=(),
        avg_of_avgs=False,
        return_per_class=False,
        k=None,
        label_comparison_fn=None,
        device=None,
        knn_func=None,
        kmeans_func=None,
        seed: int = 0,
    ):
        for name, f in (("label_comparison_fn", label_comparison_fn), ("knn_func", knn_func), ("kmeans_func", kmeans_func)):
            if f is not None:
                raise NotImplementedError(f"margin.AccuracyCalculator: {name} is not supported (margin runs its own exact kNN and k-means)")
        self._check_metrics(include, exclude)
        self.original_metrics = self._select(METRICS, include, exclude)
        if avg_of_avgs and return_per_class:
            raise ValueError("avg_of_avgs and return_per_class are mutually exclusive")
        self.avg_of_avgs = avg_of_avgs
        self.return_per_class = return_per_class
        if not ((isinstance(k, int) and not isinstance(k, bool) and k > 0) or k in (None, "max_bin_count")):
            raise ValueError("k must be an integer greater than 0, or None, or 'max_bin_count'")
        self.k = k
        self.seed = int(seed)
        self.device = device
        self.curr_metrics = list(self.original_metrics)

    # -- PML's helpers, same names -------------------------------------------------------

    def get_curr_metrics(self):
        return list(self.curr_metrics)

    def requires_clustering(self):
        return ["NMI", "AMI"]

    def requires_knn(self):
        return ["precision_at_1", "mean_average_precision", "mean_average_precision_at_r", "r_precision"]

    def description(self):
        return "avg_of_avgs" if self.avg_of_avgs else ""

    @staticmethod
    def _check_metrics(include, exclude):
        for met in (include, exclude):
            if not isinstance(met, (tuple, list)):
                raise TypeError("Arguments must be of type tuple, not {}.".format(type(met)))
            if not set(met).issubset(set(METRICS)):
                raise ValueError("Primary metrics must be one or more of: {}.".format(list(METRICS)))

    def _select(self, names, include=(), exclude=()):
        include = list(names) if len(include) == 0 else list(include)
        return [m for m in names if m in include and m not in exclude]

    def determine_k(self, bin_counts, num_reference_embeddings, ref_includes_query):
        self_count = int(ref_includes_query)
        max_bin_count = int(np.max(bin_counts))
        if self.k == "max_bin_count":
            return max_bin_count - self_count
        if self.k is None:
            return num_reference_embeddings - self_count
        if self.k < max_bin_count:
            both = set(self.curr_metrics) & {"r_precision", "mean_average_precision_at_r"}
            if both:
                _LOG.warning(
                    "You are computing %s, but the value for k (%d) is less than the max bin count (%d) so the "
                    "values for these metrics will be incorrect. To fix this, set k='max_bin_count'.",
                    both, self.k, max_bin_count,
                )
        return self.k

    # -- the call ------------------------------------------------------------------------

    def get_accuracy(self, query, query_labels, reference=None, reference_labels=None, ref_includes_query=False, include=(), exclude=()):
        """PML's ``get_accuracy``: a dict of the selected metrics."""
        q = _arrays.matrix(query, "query")
        ql = _arrays.labels(query_labels, "query_labels")
        if reference is None:
            r, rl, ref_includes_query = q, ql, True
        else:
            if reference_labels is None:
                raise ValueError("reference_labels is required with reference")
            r = _arrays.matrix(reference, "reference")
            rl = _arrays.labels(reference_labels, "reference_labels")
        if len(q) != len(ql) or len(r) != len(rl):
            raise ValueError("embeddings and labels must have the same length")
        if q.shape[1] != r.shape[1]:
            raise ValueError(f"dimension mismatch: query has dimension {q.shape[1]} but reference has dimension {r.shape[1]}")
        if ref_includes_query and reference is not None and not (
            len(r) >= len(q) and np.allclose(q, r[: len(q)]) and np.array_equal(ql, rl[: len(q)])
        ):
            raise ValueError(
                "When ref_includes_query is True, the first len(query) elements of reference must be equal to query.\n"
                "Likewise, the first len(query_labels) elements of reference_labels must be equal to query_labels.\n"
            )
        self._check_metrics(include, exclude)
        self.curr_metrics = self._select(self.original_metrics, include, exclude)
        out = {}
        if any(m in _KNN for m in self.curr_metrics):
            out.update(self._retrieval(q, ql, r, rl, bool(ref_includes_query)))
        if any(m in _CLUSTERING for m in self.curr_metrics):
            nmi, ami = _margin.nmi_ami(q, ql, self.seed)
            out["NMI"], out["AMI"] = nmi, ami
        return {m: out[m] for m in self.curr_metrics}

    def _retrieval(self, q, ql, r, rl, ref_includes_query):
        unique = np.unique(ql)
        ref_sorted = np.sort(rl)
        counts = np.searchsorted(ref_sorted, unique, side="right") - np.searchsorted(ref_sorted, unique, side="left")
        num_k = self.determine_k(counts, len(r), ref_includes_query)
        per = _margin.pml_retrieval(q, ql, r, rl, ref_includes_query, int(num_k))
        mask = per["not_lone"]
        if not mask.any():
            _LOG.warning("None of the query labels are in the reference set.")
            nan = [math.nan for _ in unique] if self.return_per_class else math.nan
            return {m: nan for m in _KNN}
        labels = ql[mask]
        return {m: self._average(per[m][mask], labels) for m in _KNN}

    def _average(self, values, labels):
        """PML's ``maybe_get_avg_of_avgs``: over queries, or per class (sorted labels)."""
        if self.avg_of_avgs or self.return_per_class:
            classes, inverse = np.unique(labels, return_inverse=True)
            sums = np.bincount(inverse, weights=values, minlength=len(classes))
            per_class = sums / np.bincount(inverse, minlength=len(classes))
            if self.return_per_class:
                return per_class.tolist()
            return float(np.mean(per_class))
        return float(np.mean(values))
