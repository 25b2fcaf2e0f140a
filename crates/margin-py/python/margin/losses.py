"""margin's fused CPU losses on numpy: ``loss(embeddings, labels) -> (value, gradient, stats)``.

Two families:

- the pair/triplet losses (``TripletMarginLoss``, ``ContrastiveLoss``), optionally with a miner;
- the losses with class parameters (``ArcFaceLoss``, ``CosFaceLoss``, ``NormalizedSoftmaxLoss``,
  ``ProxyAnchorLoss``, ``ProxyNCALoss``, ``SoftTripleLoss``), which hold their class weights,
  proxies or centres in ``loss.params`` and also give the gradient with respect to them
  (``loss.value_and_grads``); see their section below.

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

import numpy as np

from . import _arrays, _margin
from .miners import Miner

__all__ = [
    "TripletMarginLoss",
    "ContrastiveLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "NormalizedSoftmaxLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "SoftTripleLoss",
]


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


# --- The losses with class parameters ------------------------------------------------------


class _ParamLoss:
    """The losses with class parameters (base class).

    PML's constructors (``num_classes, embedding_size`` and the loss's options, PML 2.9's
    defaults). The parameters live in ``loss.params``, margin's layout ``[C·K, d]``: one row per
    class (ArcFace / CosFace / normalised softmax: PML's ``W`` transposed; Proxy-Anchor /
    Proxy-NCA: PML's ``proxies``), SoftTriple ``K = centers_per_class`` rows per class,
    class-major (PML's ``fc`` transposed). They are drawn at construction from ``seed`` by
    margin's initialiser of the loss (PML's default), exactly as a ``margin train`` run with
    ``seed = N`` draws them for the same classes and dimension, or given as ``params``. Labels
    are class indices ``0..C``. The value is the mean over rows (PML's reducer).

    ``loss(embeddings, labels)`` returns ``(value, gradient, stats)`` like the losses above;
    ``loss.value_and_grads(embeddings, labels)`` also returns the gradient with respect to the
    parameters: ``(value, gradient, params_gradient, stats)``. Training the parameters is the
    caller's (``loss.params -= lr * params_gradient``), as with any numpy array. The
    parameters are computed in the embeddings' dtype (cast from ``params``' when they differ).
    In PyTorch, an autograd ``Function`` returning both gradients::

        class MarginParamLoss(torch.autograd.Function):
            @staticmethod
            def forward(ctx, embeddings, params, labels, loss):
                v, g, gp, _ = loss.value_and_grads(embeddings.detach().numpy(), labels.numpy(), params=params.detach().numpy())
                ctx.save_for_backward(torch.from_numpy(g), torch.from_numpy(gp))
                return embeddings.new_tensor(v)

            @staticmethod
            def backward(ctx, grad_out):
                g, gp = ctx.saved_tensors
                return grad_out * g, grad_out * gp, None, None
    """
    _kind = ""
    _params_name = ""

    def __init__(self, num_classes, embedding_size, *, params=None, seed=0, **options):
        self.num_classes = _arrays.count(num_classes, "num_classes")
        self.embedding_size = _arrays.count(embedding_size, "embedding_size")
        spec = {
            "kind": self._kind,
            "num_classes": self.num_classes,
            "embedding_size": self.embedding_size,
            "margin": 0.0,
            "scale": 1.0,
            "temperature": 1.0,
            "alpha": 1.0,
            "softmax_scale": 1.0,
            "centers_per_class": 1,
            "la": 1.0,
            "gamma": 1.0,
        }
        spec.update(options)
        self.spec = spec
        if params is None:
            seed = _arrays.count(seed, "seed", minimum=0)
            self.params = _margin.param_init(_Spec(spec), seed)
        else:
            self.params = self._checked(params)

    @property
    def rows_per_class(self) -> int:
        """Parameter rows per class: SoftTriple's ``centers_per_class``, else 1."""
        return int(self.spec["centers_per_class"]) if self._kind == "soft_triple" else 1

    def _checked(self, params):
        p = _arrays.matrix(params, "params")
        want = (self.num_classes * self.rows_per_class, self.embedding_size)
        if p.shape != want:
            per = f", {self.rows_per_class} per class, class-major" if self.rows_per_class > 1 else ""
            raise ValueError(f"params: the {self._params_name} have shape {p.shape}, but {type(self).__name__}({self.num_classes} classes, embedding_size {self.embedding_size}) needs {want}{per}")
        return p

    def value_and_grads(self, embeddings, labels, *, params=None):
        """``(value, d value / d embeddings, d value / d params, stats)`` of the batch, on
        ``self.params`` or the given ``params`` (shape ``[C·K, d]``). Gradients in the
        embeddings' dtype."""
        e = _arrays.matrix(embeddings, "embeddings")
        lab = _arrays.labels(labels, "labels")
        p = self.params if params is None else self._checked(params)
        p = np.ascontiguousarray(p, dtype=e.dtype)
        value, grad, pgrad, stats = _margin.param_loss(_Spec(self.spec), e, lab, p)
        return value, grad, pgrad, json.loads(stats)

    def __call__(self, embeddings, labels):
        """``(value, gradient, stats)`` of the batch on ``self.params`` (as the other losses)."""
        value, grad, _, stats = self.value_and_grads(embeddings, labels)
        return value, grad, stats

    def __repr__(self):
        return f"{type(self).__name__}({self.spec!r})"


class ArcFaceLoss(_ParamLoss):
    """ArcFace (Deng et al. 2019, arXiv:1801.07698): softmax over ``scale · cos`` with the
    additive angular margin ``margin`` (degrees) on the target class — PML's
    ``ArcFaceLoss(num_classes, embedding_size, margin=28.6, scale=64)``. ``params``: the class
    weights ``[C, d]`` (PML's ``W.T``)."""

    _kind = "arcface"
    _params_name = "class weights"

    def __init__(self, num_classes, embedding_size, margin=28.6, scale=64.0, *, params=None, seed=0):
        super().__init__(num_classes, embedding_size, params=params, seed=seed, margin=float(margin), scale=float(scale))


class CosFaceLoss(_ParamLoss):
    """CosFace (Wang et al. 2018, arXiv:1801.09414): softmax over ``scale · cos`` with the
    additive cosine margin ``margin`` on the target class — PML's
    ``CosFaceLoss(num_classes, embedding_size, margin=0.35, scale=64)``. ``params``: the class
    weights ``[C, d]`` (PML's ``W.T``)."""

    _kind = "cosface"
    _params_name = "class weights"

    def __init__(self, num_classes, embedding_size, margin=0.35, scale=64.0, *, params=None, seed=0):
        super().__init__(num_classes, embedding_size, params=params, seed=seed, margin=float(margin), scale=float(scale))


class NormalizedSoftmaxLoss(_ParamLoss):
    """The normalised softmax (Zhai & Wu 2019, arXiv:1811.12649): softmax over
    ``cos / temperature`` — PML's ``NormalizedSoftmaxLoss(num_classes, embedding_size,
    temperature=0.05)``. ``params``: the class weights ``[C, d]`` (PML's ``W.T``)."""

    _kind = "normalized_softmax"
    _params_name = "class weights"

    def __init__(self, num_classes, embedding_size, temperature=0.05, *, params=None, seed=0):
        super().__init__(num_classes, embedding_size, params=params, seed=seed, temperature=float(temperature))


class ProxyAnchorLoss(_ParamLoss):
    """Proxy-Anchor (Kim et al. 2020, arXiv:2003.13911): each proxy an anchor against the
    batch's rows, margin ``margin`` and scale ``alpha`` — PML's ``ProxyAnchorLoss(num_classes,
    embedding_size, margin=0.1, alpha=32)``. ``params``: the proxies ``[C, d]``."""

    _kind = "proxy_anchor"
    _params_name = "proxies"

    def __init__(self, num_classes, embedding_size, margin=0.1, alpha=32.0, *, params=None, seed=0):
        super().__init__(num_classes, embedding_size, params=params, seed=seed, margin=float(margin), alpha=float(alpha))


class ProxyNCALoss(_ParamLoss):
    """Proxy-NCA (Movshovitz-Attias et al. 2017, arXiv:1703.07464): NCA over the squared
    distances to the proxies, scaled by ``softmax_scale`` — PML's ``ProxyNCALoss(num_classes,
    embedding_size, softmax_scale=1)``. ``params``: the proxies ``[C, d]``."""

    _kind = "proxy_nca"
    _params_name = "proxies"

    def __init__(self, num_classes, embedding_size, softmax_scale=1.0, *, params=None, seed=0):
        super().__init__(num_classes, embedding_size, params=params, seed=seed, softmax_scale=float(softmax_scale))


class SoftTripleLoss(_ParamLoss):
    """SoftTriple (Qian et al. 2019, arXiv:1909.05235): ``centers_per_class`` centres a class,
    softmax over ``la ·`` the centre-weighted similarities (temperature ``gamma``) with the
    margin ``margin`` — PML's ``SoftTripleLoss(num_classes, embedding_size,
    centers_per_class=10, la=20, gamma=0.1, margin=0.01)`` (as in PML, without the paper's
    centre regulariser). ``params``: the centres ``[C·K, d]``, class ``c``'s centre ``k`` at
    row ``c·K + k`` (PML's ``fc.T``)."""

    _kind = "soft_triple"
    _params_name = "centers"

    def __init__(self, num_classes, embedding_size, centers_per_class=10, la=20.0, gamma=0.1, margin=0.01, *, params=None, seed=0):
        k = _arrays.count(centers_per_class, "centers_per_class")
        super().__init__(num_classes, embedding_size, params=params, seed=seed, centers_per_class=k, la=float(la), gamma=float(gamma), margin=float(margin))
