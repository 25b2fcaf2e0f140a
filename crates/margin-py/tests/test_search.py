"""margin.knn and margin.Index: exactness against numpy, ids, removal, save/load, pickling."""

import pickle

import numpy as np
import pytest

import margin
from conftest import clustered


def brute(q, r, k, distance):
    if distance == "euclidean":
        d = np.sqrt(np.maximum(((q[:, None, :].astype(np.float64) - r[None, :, :]) ** 2).sum(-1), 0))
    elif distance == "squared-euclidean":
        d = ((q[:, None, :].astype(np.float64) - r[None, :, :]) ** 2).sum(-1)
    elif distance == "cosine":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        rn = r / np.linalg.norm(r, axis=1, keepdims=True)
        d = 1 - qn.astype(np.float64) @ rn.T
    else:
        d = -(q.astype(np.float64) @ r.T)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


@pytest.mark.parametrize("distance", ["euclidean", "squared-euclidean", "cosine", "dot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_exact(distance, dtype):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(37, 9)).astype(dtype)
    r = rng.normal(size=(300, 9)).astype(dtype)
    idx, dist = margin.knn(q, r, 7, distance=distance)
    want_idx, want_d = brute(q, r, 7, distance)
    assert idx.dtype == np.int64 and idx.shape == (37, 7) and dist.shape == (37, 7)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_d, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_index_add_search_remove(kind):
    x, _ = clustered(0, n_classes=10, per_class=30, dim=8)
    ids = [f"item{i}" for i in range(len(x))]
    index = margin.Index.build(x, ids=ids, kind=kind, seed=1, threads=1)
    assert len(index) == len(x) and index.dim == 8 and index.kind == kind and index.metric == "euclidean"
    found, dist = index.search(x[:5], 3)
    assert [f[0] for f in found] == ids[:5]
    assert dist.shape == (5, 3) and np.all(dist[:, 0] == 0)
    assert index.remove(["item0", "item1"]) == 2
    found, _ = index.search(x[:2], 1)
    assert found[0][0] not in ("item0", "item1") and found[1][0] not in ("item0", "item1")
    with pytest.raises(ValueError, match="item0"):
        index.remove(["item0"])
    assert len(index) == len(x) - 2
    assert "item0" not in index.ids()


@pytest.mark.parametrize("kind,precision", [("flat", "f32"), ("hnsw", "f16"), ("hnsw", "i8")])
def test_save_load_and_pickle_round_trip(tmp_path, kind, precision):
    x, _ = clustered(1, n_classes=6, per_class=20, dim=5)
    index = margin.Index.build(x, kind=kind, precision=precision, metric="cosine", fingerprint="model-a", threads=1)
    index.remove(["3"])
    q = x[:10]
    want = index.search(q, 4)
    path = tmp_path / "a.index"
    index.save(str(path))
    loaded = margin.Index.load(str(path), dim=5, metric="cosine", fingerprint="model-a")
    for other in (loaded, pickle.loads(pickle.dumps(index)), margin.Index.from_bytes(index.to_bytes())):
        got = other.search(q, 4)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        assert (other.precision, other.kind, other.metric, other.fingerprint, len(other)) == (precision, kind, "cosine", "model-a", len(index))
    with pytest.raises(ValueError, match="model-b|fingerprint|model"):
        margin.Index.load(str(path), fingerprint="model-b")


def test_index_tags_filter():
    x, _ = clustered(2, n_classes=3, per_class=10, dim=4)
    tags = ["even" if i % 2 == 0 else "odd" for i in range(len(x))]
    index = margin.Index.build(x, tags=tags)
    found, _ = index.search(x[:4], 3, tags=["odd"])
    assert all(int(i) % 2 == 1 for row in found for i in row)
