"""Input conversion shared by every entry point.

C-contiguous float32/float64 numpy arrays pass through untouched (the native side borrows
their buffer). Anything else with ``__array__`` (a torch CPU tensor, a list, a memoryview)
goes through ``numpy.asarray`` — torch is never imported. Other numeric dtypes are cast to
float64, non-contiguous views copied; bool, complex, object and string arrays are refused.
"""

from __future__ import annotations

import numpy as np


def matrix(x, name: str) -> np.ndarray:
    """``x`` as a C-contiguous 2-D float32/float64 array (borrowed when it already is one)."""
    if x is None:
        raise TypeError(f"{name}: expected a 2-D array of embeddings, got None")
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{name}: expected float32 or float64 values, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows × dim), got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def labels(x, name: str) -> np.ndarray:
    """``x`` as C-contiguous 1-D int64 labels; float labels must be whole numbers."""
    if x is None:
        raise TypeError(f"{name}: expected a 1-D array of labels, got None")
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            row = int(np.flatnonzero(~np.isfinite(a))[0])
            raise ValueError(f"{name}: row {row} is {a[row]} (labels must be whole numbers)")
        whole = a == np.round(a)
        if not np.all(whole):
            row = int(np.flatnonzero(~whole)[0])
            raise ValueError(f"{name}: row {row} is {a[row]} (labels must be whole numbers)")
    elif a.dtype.kind not in "iub":
        raise TypeError(f"{name}: expected integer labels, got dtype {a.dtype}")
    if a.size and a.dtype.kind in "uf":
        big = (a > np.iinfo(np.int64).max) | (a < np.iinfo(np.int64).min)
        if np.any(big):
            row = int(np.flatnonzero(big)[0])
            raise ValueError(f"{name}: row {row} is {a[row]}, outside the int64 range of labels")
    return np.ascontiguousarray(a.astype(np.int64, copy=False))


def count(value, name: str, minimum: int = 1) -> int:
    """An integer parameter of at least ``minimum`` (ValueError/TypeError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"invalid {name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"invalid {name}: {value} (must be at least {minimum})")
    return int(value)
