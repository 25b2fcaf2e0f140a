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
