"""Shared fixtures: the `margin` binary (for comparing with the CLI) and ../shared."""

import os
import pathlib
import shutil

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def margin_bin():
    """The CLI built by `cargo test --profile checked` (MARGIN_BIN overrides)."""
    env = os.environ.get("MARGIN_BIN")
    if env:
        return env
    for p in (REPO / "target" / "checked" / "margin", REPO / "target" / "release" / "margin"):
        if p.exists():
            return str(p)
    return shutil.which("margin")


@pytest.fixture
def cli():
    b = margin_bin()
    if b is None:
        pytest.skip("the margin binary is not built (cargo build --profile checked -p margin-cli, or MARGIN_BIN)")
    return b


def shared_dir():
    env = os.environ.get("MARGIN_SHARED")
    return pathlib.Path(env) if env else REPO.parent / "shared"


def clustered(seed, n_classes=5, per_class=8, dim=6, spread=0.6, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 2
    labels = np.repeat(np.arange(n_classes), per_class)
    x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    perm = rng.permutation(len(labels))
    return x[perm].astype(dtype), labels[perm].astype(np.int64)
