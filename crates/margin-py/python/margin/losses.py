"""margin's fused CPU losses on numpy: ``loss(embeddings, labels) -> (value, gradient, stats)``.

``embeddings`` is a ``[B, d]`` float32/float64 batch, ``labels`` ``[B]`` integers; every
valid triplet / pair of the batch is used, or the tuples a miner picks. The value is the
reduced loss (a float), the gradient ``d value / d embeddings`` (same shape and dtype), and
``stats`` margin's step statistics (tuples, active tuples and fraction, mean d(a,p) and
d(a,n), the miner's, and ``seconds``: the Rust side's wall time of the call). The planner takes the fused O(B²) path (no tuple list) wherever the
loss/miner pair allows, as in training and ``margin loss``.

Defaults are pytorch-metric-learning's (``TripletMarginLoss(margin=0.05)``,
``ContrastiveLoss(pos_margin=0, neg_margin=1)``, L2-normalised Euclidean distance,
``AvgNonZeroReducer``).

In PyTorch — the gradient is computed by margin, so wrap the call in an autograd
``Function`` (tested in ``tests/test_losses.py`` when torch is importable)::

    import torch, margin.losses

    class MarginLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, embeddings, labels, loss):
            value, grad, _ = loss(embeddings.detach().cpu().numpy(), labels.cpu().numpy())
            ctx.save_for_backward(torch.from_numpy(grad).to(embeddings.device))
            return embeddings.new_tensor(value)

        @staticmethod
        def backward(ctx, g):
            (grad,) = ctx.saved_tensors
            return g * grad, None, None

    loss = margin.losses.TripletMarginLoss(margin=0.2)
    value = MarginLoss.apply(embeddings, labels, loss)
    value.backward()
"""

from __future__ import annotations

import json

from . import _arrays, _margin
from .miners import Miner

__all__ = ["TripletMarginLoss", "ContrastiveLoss"]


class _Loss:
    _kind = ""

    def __init__(self, *, distance="euclidean", normalize=True, reducer="avg_non_zero", threshold_low=None, threshold_high=None, miner=None, seed=0, **kw):
        if miner is not None and not isinstance(miner, Miner):
            raise TypeError(f"miner: expected a margin.miners miner, got {type(miner).__name__}")
        self.spec = {
            "kind": self._kind,
            "margin": 0.05,
            "pos_margin": 0.0,
            "neg_margin": 1.0,
            "form": "linear",
            "pooling": "separate",
            "distance": distance,
            "normalize": bool(normalize),
            "reducer": reducer,
            "threshold_low": threshold_low,
            "threshold_high": threshold_high,
            "swap": False,
            "smooth": False,
            "miner": None if miner is None else miner.to_json(),
            "miner_distance": None if miner is None else miner.distance,
            "miner_normalize": True if miner is None else bool(miner.normalize),
            "seed": int(seed),
        }
        self.spec.update(kw)
        self.miner = miner

    def __call__(self, embeddings, labels, *, seed=None):
        """``(value, gradient, stats)`` of the batch (``seed``: the distance-weighted miner's draw)."""
        e = _arrays.matrix(embeddings, "embeddings")
        lab = _arrays.labels(labels, "labels")
        spec = self.spec if seed is None else {**self.spec, "seed": int(seed)}
        value, grad, stats = _margin.loss(_Spec(spec), e, lab)
        return value, grad, json.loads(stats)

    def __repr__(self):
        return f"{type(self).__name__}({self.spec!r})"


class _Spec:
    """Attribute view of the settings (what the native side extracts)."""

    def __init__(self, d):
        self.__dict__.update(d)


class TripletMarginLoss(_Loss):
    """PML's ``TripletMarginLoss(margin=0.05, swap=False, smooth_loss=False)``."""

    _kind = "triplet"

    def __init__(self, margin=0.05, swap=False, smooth_loss=False, **kw):
        super().__init__(margin=float(margin), swap=bool(swap), smooth=bool(smooth_loss), **kw)


class ContrastiveLoss(_Loss):
    """PML's ``ContrastiveLoss(pos_margin=0, neg_margin=1)``; ``form="squared"`` and
    ``pooling="pooled"`` give Hadsell et al.'s squared form."""

    _kind = "contrastive"

    def __init__(self, pos_margin=0.0, neg_margin=1.0, form="linear", pooling="separate", **kw):
        super().__init__(pos_margin=float(pos_margin), neg_margin=float(neg_margin), form=form, pooling=pooling, **kw)
