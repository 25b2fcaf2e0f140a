"""margin — deep metric learning in Rust, from numpy.

- :func:`evaluate`: the full evaluation report of ``margin eval`` (retrieval, clustering,
  verification, few-shot) as a dict, keys as in ``metrics.json``.
- :class:`AccuracyCalculator`: a drop-in for pytorch-metric-learning's, without faiss and
  without an n × n matrix (``from margin import AccuracyCalculator``).
- :func:`knn` (exact) and :class:`Index` (exact ``flat`` or approximate ``hnsw``; picklable).
- :class:`Model`: ``Model.load(run_dir).embed(x)`` — ``margin embed`` from Python (arrays,
  image paths, or texts with a sentence-transformers folder; pickles by path).
- :mod:`margin.losses`: the fused CPU losses on numpy, ``(value, gradient, stats)``.

Inputs are numpy arrays or anything with ``__array__`` (torch CPU tensors; torch is never
imported). C-contiguous float32/float64 arrays are read in place; the GIL is released while
margin computes; bad input raises ``ValueError``/``TypeError`` naming the input.
"""

from __future__ import annotations

import json as _json

from . import _arrays
from . import _margin
from ._margin import Index, Model, __version__
from .accuracy_calculator import AccuracyCalculator
from . import losses, miners

__all__ = ["evaluate", "knn", "Index", "Model", "AccuracyCalculator", "losses", "miners", "__version__"]


def evaluate(
    embeddings,
    labels,
    *,
    reference=None,
    reference_labels=None,
    distance: str = "euclidean",
    k=None,
    pairs: int = 1_000_000,
    episodes=None,
    episode_queries: int = 15,
    seed: int = 0,
    clustering: bool = True,
) -> dict:
    """Every metric of ``margin eval`` on arrays: the report as a dict — the document
    ``margin eval --json`` prints, and the ``test`` section of a run's ``metrics.json``.

    Without ``reference`` the embeddings are searched against themselves, each row's own
    index excluded. ``distance``: ``euclidean``, ``squared-euclidean``, ``cosine`` or ``dot``.
    ``k``: neighbours for P@k / R-Precision / MAP@R (default: the largest class's R).
    ``pairs``: verification pairs (all when at most this many, else a seeded sample).
    ``episodes``: ``(n_way, k_shot, count)`` few-shot episodes (default ``(5, 1, 1000)``,
    skipped with a note when the data has too few classes; an explicit request that cannot
    be drawn raises). ``seed`` seeds k-means++, the pair sample and the episodes.
    Same defaults as the CLI, so the same arrays give the CLI's numbers.
    """
    e = _arrays.matrix(embeddings, "embeddings")
    lab = _arrays.labels(labels, "labels")
    if (reference is None) != (reference_labels is None):
        raise ValueError("reference and reference_labels go together: give both or neither")
    r = rl = None
    if reference is not None:
        r = _arrays.matrix(reference, "reference")
        rl = _arrays.labels(reference_labels, "reference_labels")
    if episodes is not None:
        episodes = tuple(episodes)
        if len(episodes) != 3:
            raise ValueError(f"episodes: expected (n_way, k_shot, count), got {episodes}")
        episodes = tuple(_arrays.count(v, f"episodes ({w})") for v, w in zip(episodes, ("N-way", "K-shot", "count")))
    k = None if k is None else _arrays.count(k, "k")
    pairs = _arrays.count(pairs, "pairs")
    episode_queries = _arrays.count(episode_queries, "episode_queries")
    seed = _arrays.count(seed, "seed", 0)
    text = _margin.evaluate_json(e, lab, r, rl, distance, k, pairs, episodes, episode_queries, seed, clustering)
    return _json.loads(text)


def knn(queries, references, k: int, distance: str = "euclidean"):
    """Exact k nearest references of every query: ``(indices [n, k] int64, distances [n, k] float64)``.

    Nearest first, ties by the smaller index; distances are smaller-is-closer
    (``dot`` gives ``-q·r``). Memory is the tiles plus the result, never ``n × m``.
    """
    k = _arrays.count(k, "k")
    q = _arrays.matrix(queries, "queries")
    r = _arrays.matrix(references, "references")
    return _margin.knn(q, r, k, distance)
