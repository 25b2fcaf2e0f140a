from typing import Any, Optional, Tuple

import numpy as np
import numpy.typing as npt

from .miners import Miner

class _Loss:
    def __call__(self, embeddings: Any, labels: Any, *, seed: Optional[int] = ...) -> Tuple[float, npt.NDArray[np.floating], dict]: ...

class TripletMarginLoss(_Loss):
    def __init__(
        self,
        margin: float = ...,
        swap: bool = ...,
        smooth_loss: bool = ...,
        *,
        distance: str = ...,
        normalize: bool = ...,
        reducer: str = ...,
        threshold_low: Optional[float] = ...,
        threshold_high: Optional[float] = ...,
        miner: Optional[Miner] = ...,
        seed: int = ...,
    ) -> None: ...

class ContrastiveLoss(_Loss):
    def __init__(
        self,
        pos_margin: float = ...,
        neg_margin: float = ...,
        form: str = ...,
        pooling: str = ...,
        *,
        distance: str = ...,
        normalize: bool = ...,
        reducer: str = ...,
        threshold_low: Optional[float] = ...,
        threshold_high: Optional[float] = ...,
        miner: Optional[Miner] = ...,
        seed: int = ...,
    ) -> None: ...

class _ParamLoss:
    num_classes: int
    embedding_size: int
    params: npt.NDArray[np.floating]
    @property
    def rows_per_class(self) -> int: ...
    def __call__(self, embeddings: Any, labels: Any) -> Tuple[float, npt.NDArray[np.floating], dict]: ...
    def value_and_grads(
        self, embeddings: Any, labels: Any, *, params: Optional[Any] = ...
    ) -> Tuple[float, npt.NDArray[np.floating], npt.NDArray[np.floating], dict]: ...

class ArcFaceLoss(_ParamLoss):
    def __init__(
        self, num_classes: int, embedding_size: int, margin: float = ..., scale: float = ..., *, params: Optional[Any] = ..., seed: int = ...
    ) -> None: ...

class CosFaceLoss(_ParamLoss):
    def __init__(
        self, num_classes: int, embedding_size: int, margin: float = ..., scale: float = ..., *, params: Optional[Any] = ..., seed: int = ...
    ) -> None: ...

class NormalizedSoftmaxLoss(_ParamLoss):
    def __init__(
        self, num_classes: int, embedding_size: int, temperature: float = ..., *, params: Optional[Any] = ..., seed: int = ...
    ) -> None: ...

class ProxyAnchorLoss(_ParamLoss):
    def __init__(
        self, num_classes: int, embedding_size: int, margin: float = ..., alpha: float = ..., *, params: Optional[Any] = ..., seed: int = ...
    ) -> None: ...

class ProxyNCALoss(_ParamLoss):
    def __init__(
        self, num_classes: int, embedding_size: int, softmax_scale: float = ..., *, params: Optional[Any] = ..., seed: int = ...
    ) -> None: ...

class SoftTripleLoss(_ParamLoss):
    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        centers_per_class: int = ...,
        la: float = ...,
        gamma: float = ...,
        margin: float = ...,
        *,
        params: Optional[Any] = ...,
        seed: int = ...,
    ) -> None: ...
