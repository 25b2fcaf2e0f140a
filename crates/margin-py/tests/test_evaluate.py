"""margin.evaluate equals `margin eval --json` on the same arrays."""

import json
import subprocess

import numpy as np
import pytest

import margin
from conftest import clustered


def cli_report(cli, tmp_path, e, l, extra=(), reference=None):
    np.save(tmp_path / "E.npy", e)
    np.save(tmp_path / "L.npy", l)
    args = [cli, "eval", "--embeddings", str(tmp_path / "E.npy"), "--labels", str(tmp_path / "L.npy"), "--json", *extra]
    if reference is not None:
        np.save(tmp_path / "R.npy", reference[0])
        np.save(tmp_path / "RL.npy", reference[1])
        args += ["--reference-embeddings", str(tmp_path / "R.npy"), "--reference-labels", str(tmp_path / "RL.npy")]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def strip(r):
    """The report without wall times, and with skip reasons stripped of the input's name
    (the CLI names files: `--labels L.npy: ...`; the binding names arguments: `labels: ...`)."""
    r = dict(r)
    r.pop("seconds")
    r["skipped"] = [{"section": s["section"], "reason": s["reason"].split(": ", 1)[-1]} for s in r["skipped"]]
    return r


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_equals_cli(cli, tmp_path, dtype, distance):
    e, l = clustered(1, n_classes=6, per_class=20, dtype=dtype)
    want = cli_report(cli, tmp_path, e, l, ["--distance", distance, "--episodes", "5,1,50", "--seed", "3"])
    got = margin.evaluate(e, l, distance=distance, episodes=(5, 1, 50), seed=3)
    assert strip(got) == strip(want)
    assert got["retrieval"]["k"] == 19
    assert got["element_type"] == np.dtype(dtype).name.replace("float", "f")


def test_reference_equals_cli(cli, tmp_path):
    e, l = clustered(2, n_classes=4, per_class=6)
    r, rl = clustered(3, n_classes=4, per_class=7)
    want = cli_report(cli, tmp_path, e, l, ["--k", "5"], reference=(r, rl))
    got = margin.evaluate(e, l, reference=r, reference_labels=rl, k=5)
    assert strip(got) == strip(want)
    assert got["n_references"] == len(r)


def test_keys_and_values():
    e, l = clustered(4)
    r = margin.evaluate(e, l)
    assert {"retrieval", "clustering", "verification", "few_shot", "skipped", "seconds"} <= set(r)
    assert 0.0 <= r["retrieval"]["precision_at_1"] <= 1.0
    # perfectly separated classes retrieve perfectly
    x = np.repeat(np.eye(4, dtype=np.float32) * 10, 3, axis=0)
    y = np.repeat(np.arange(4), 3)
    assert margin.evaluate(x, y)["retrieval"]["map_at_r"] == 1.0


def test_torch_like_array_interface():
    class Tensorish:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    e, l = clustered(5)
    assert strip(margin.evaluate(Tensorish(e), Tensorish(l))) == strip(margin.evaluate(e, l))
