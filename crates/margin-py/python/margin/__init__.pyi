import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import losses as losses, miners as miners
from .accuracy_calculator import AccuracyCalculator as AccuracyCalculator

__version__: str

ArrayLike = Union[npt.ArrayLike, Any]

def evaluate(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    reference: Optional[ArrayLike] = ...,
    reference_labels: Optional[ArrayLike] = ...,
    distance: str = ...,
    k: Optional[int] = ...,
    pairs: int = ...,
    episodes: Optional[Tuple[int, int, int]] = ...,
    episode_queries: int = ...,
    seed: int = ...,
    clustering: bool = ...,
) -> dict: ...
def knn(queries: ArrayLike, references: ArrayLike, k: int, distance: str = ...) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]: ...

class Index:
    def __init__(
        self,
        dim: int,
        metric: str = ...,
        kind: str = ...,
        precision: str = ...,
        m: int = ...,
        ef_construction: int = ...,
        seed: int = ...,
        threads: int = ...,
        fingerprint: str = ...,
        tagged: bool = ...,
    ) -> None: ...
    @classmethod
    def build(cls, vectors: ArrayLike, ids: Optional[Sequence[str]] = ..., **kwargs: Any) -> "Index": ...
    def add(self, vectors: ArrayLike, ids: Optional[Sequence[str]] = ..., tags: Optional[Sequence[str]] = ...) -> None: ...
    def remove(self, ids: Sequence[str]) -> int: ...
    def search(self, queries: ArrayLike, k: int, ef: int = ..., tags: Optional[Sequence[str]] = ...) -> Tuple[list, npt.NDArray[np.float32]]: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str, dim: Optional[int] = ..., metric: Optional[str] = ..., fingerprint: Optional[str] = ...) -> "Index": ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> "Index": ...
    def ids(self) -> list: ...
    def __len__(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def precision(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...

class Model:
    """A run folder of ``margin train`` or a sentence-transformers folder; pickles by path."""
    @staticmethod
    def load(path: Union[str, "os.PathLike[str]"]) -> "Model": ...
    def embed(
        self,
        x: Union[ArrayLike, Sequence[Union[str, "os.PathLike[str]"]], Sequence[str]],
        normalize: Optional[bool] = ...,
        batch: Optional[int] = ...,
    ) -> npt.NDArray[np.float32]: ...
    @property
    def path(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def is_text(self) -> bool: ...
