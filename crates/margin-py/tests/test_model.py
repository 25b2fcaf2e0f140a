"""margin.Model: embed equals `margin embed` on the same input (a tiny run folder trained
here with the `margin` binary), image paths equal the folder's embedding, texts equal
`margin embed --model MINILM` (where MARGIN_TEST_MINILM is set), pickling by path, and
bad inputs raise."""

import gzip
import os
import pathlib
import pickle
import struct
import subprocess
import zlib

import numpy as np
import pytest

import margin
from gil_check import assert_releases_gil
from conftest import REPO, shared_dir

ENV = dict(os.environ, RAYON_NUM_THREADS="2")


def run(cli, *args):
    out = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, env=ENV)
    assert out.returncode == 0, out.stderr
    return out


def digits_csv():
    p = shared_dir() / "data" / "sklearn_digits" / "digits.csv.gz"
    if not p.is_file():
        pytest.skip(f"{p} is needed")
    return p


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The bundled digits configuration (feature scale 16), one epoch."""
    from conftest import margin_bin

    cli = margin_bin()
    if cli is None:
        pytest.skip("the margin binary is not built")
    d = tmp_path_factory.mktemp("digits")
    text = (REPO / "configs" / "digits.toml").read_text()
    text = text.replace("../shared/data/sklearn_digits/digits.csv.gz", str(digits_csv())).replace("epochs = 3", "epochs = 1")
    (d / "digits.toml").write_text(text)
    run(cli, "train", "--config", d / "digits.toml", "--out", d / "run", "--no-eval", "-q")
    return cli, d


def digits_rows():
    with gzip.open(digits_csv(), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", skiprows=1)
    return rows[:, :-1]


def write_npy(path, a):
    np.save(path, a)


def test_array_embed_equals_the_cli(digits_run):
    cli, d = digits_run
    x = digits_rows()[:200].astype(np.float32)
    write_npy(d / "x.npy", x)
    for extra, normalize in (((), None), (("--raw",), False)):
        out = d / f"cli{len(extra)}.npy"
        run(cli, "embed", "--model", d / "run", "--input", d / "x.npy", "--out", out, *extra)
        want = np.load(out)
        m = margin.Model.load(d / "run")
        got = m.embed(x, normalize=normalize, batch=64)
        assert got.dtype == np.float32 and got.shape == (200, m.dim) == want.shape
        np.testing.assert_array_equal(got, want)
        # float64 input: the same values, read as float32 as margin embed reads an .npy.
        np.testing.assert_array_equal(m.embed(x.astype(np.float64), normalize=normalize), want)
    # The card's scale is applied: unscaled rows give different embeddings from pre-divided ones.
    m = margin.Model.load(d / "run")
    assert not np.allclose(m.embed(x), m.embed(x / 16))
    assert np.allclose(np.linalg.norm(m.embed(x), axis=1), 1, atol=1e-5)
    # A strided view is read as its values.
    wide = np.repeat(x, 2, axis=0)[::2]
    np.testing.assert_array_equal(m.embed(wide), m.embed(x))


def test_pickle_by_path(digits_run):
    _, d = digits_run
    m = margin.Model.load(str(d / "run"))
    blob = pickle.dumps(m)
    assert len(blob) < 1000, "pickles by path, not by weights"
    m2 = pickle.loads(blob)
    assert m2.path == m.path
    x = digits_rows()[:10]
    np.testing.assert_array_equal(m2.embed(x), m.embed(x))


def test_bad_inputs_raise(digits_run, tmp_path):
    _, d = digits_run
    m = margin.Model.load(d / "run")
    x = digits_rows()[:5]
    with pytest.raises(ValueError, match="rows of 64 features"):
        m.embed(x[:, :10])
    with pytest.raises(ValueError, match="rows of 64 features"):
        m.embed(x.reshape(5, 8, 8))
    bad = x.copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValueError, match="non-finite value NaN in sample 3"):
        m.embed(bad)
    with pytest.raises(TypeError, match="float32 or float64"):
        m.embed(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="feature vectors"):
        m.embed(["a.png"])
    with pytest.raises(ValueError, match="batch"):
        m.embed(x, batch=0)
    with pytest.raises(OSError, match="model.json"):
        margin.Model.load(tmp_path / "nothing")
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="model.json"):
        margin.Model.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((d / "run" / "model.json").read_text())
    with pytest.raises(OSError, match="model.safetensors"):
        margin.Model.load(broken)


# --- image paths -------------------------------------------------------------------------

def png(path, rgb):
    """A minimal RGB PNG (8-bit, no filter), so the test needs no imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def picture_folder(root, classes, per_class, seed):
    rng = np.random.default_rng(seed)
    paths = []
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            h, w = 40 + 8 * (k % 2), 48 + 8 * (k % 3)
            base = np.zeros((h, w, 3)) + [[60 + 40 * (ci % 4)]]
            img = np.clip(base + rng.normal(scale=30, size=(h, w, 3)), 0, 255)
            p = root / c / f"img{k:02}.png"
            png(p, img)
            paths.append(p)
    return sorted(paths)


CONFIG = """output_root = "runs"

[data]
kind = "image_folder"
path = "{train}"
test = "{test}"

[data.preprocess]
channels = "rgb"
size = 32
resize = {{ kind = "shorter_side" }}
normalize = {{ kind = "imagenet" }}

[train]
seed = 0
epochs = 1
lr = 1e-3
validate_every = 0
eval_batch = 64

[train.model]
kind = "convnet4"
width = 8
embedding_dim = 16

[train.loss]
kind = "triplet"
margin = 0.2

[train.miner]
kind = "batch-hard"

[train.sampler]
classes_per_batch = 3
samples_per_class = 4
"""


def test_image_paths_equal_the_folder_embedding(cli, tmp_path):
    train, test = tmp_path / "train", tmp_path / "test"
    picture_folder(train, ["anna", "boris", "chen"], 8, 0)
    paths = picture_folder(test, ["dara", "emeka"], 4, 1)
    (tmp_path / "photos.toml").write_text(CONFIG.format(train=train, test=test))
    run(cli, "train", "--config", tmp_path / "photos.toml", "--out", tmp_path / "run", "--no-eval", "-q")
    run(cli, "embed", "--model", tmp_path / "run", "--input", test, "--out", tmp_path / "e.npy", "--labels-out", tmp_path / "l.txt")
    want = np.load(tmp_path / "e.npy")
    names = (tmp_path / "l.txt").read_text().split()
    assert names == sorted(names), "the folder is embedded class by class, files in name order"
    m = margin.Model.load(tmp_path / "run")
    got = m.embed([str(p) for p in paths])
    assert got.shape == want.shape == (8, 16)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(m.embed(paths, batch=3), want)  # os.PathLike too
    with pytest.raises(OSError, match="missing.png"):
        m.embed([paths[0], tmp_path / "missing.png"])
    (tmp_path / "junk.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="junk.png"):
        m.embed([tmp_path / "junk.png"])
    with pytest.raises(ValueError, match="prepared pictures"):
        m.embed(np.zeros((2, 3, 8, 8), np.float32))


# --- text --------------------------------------------------------------------------------

def test_text_embed_equals_the_cli(cli, tmp_path):
    folder = os.environ.get("MARGIN_TEST_MINILM")
    if not folder or not (pathlib.Path(folder) / "modules.json").is_file():
        pytest.skip("MARGIN_TEST_MINILM (an all-MiniLM-L6-v2 folder) is not set")
    texts = ["how do I reset my card pin", "what is the weather in Lagos", "", "transfer 20 euros to Anna"]
    (tmp_path / "t.txt").write_text("\n".join(texts) + "\n")
    run(cli, "embed", "--model", folder, "--input", tmp_path / "t.txt", "--out", tmp_path / "t.npy")
    want = np.load(tmp_path / "t.npy")
    m = margin.Model.load(folder)
    assert m.is_text and m.dim == 384
    got = m.embed(texts, batch=2)
    assert got.shape == want.shape == (4, 384)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        m.embed(texts, normalize=False)
    with pytest.raises(TypeError, match="list of strings"):
        m.embed(np.zeros((2, 3)))


def test_array_likes_and_gil_released(digits_run):
    _, d = digits_run
    m = margin.Model.load(d / "run")
    x = digits_rows()[:20].astype(np.float32)

    class Wrapped:  # anything with __array__ (a torch CPU tensor), without importing torch
        def __array__(self, dtype=None, copy=None):
            return x

    np.testing.assert_array_equal(m.embed(Wrapped()), m.embed(x))
    rows = digits_rows().astype(np.float32)
    assert_releases_gil(lambda size: m.embed(np.tile(rows, (20 * size, 1))))


GREY_CONFIG = """[data]
kind = "image_folder"
path = "{data}"
image_size = 16

[split]
test_fraction = 0.34

[train]
seed = 0
epochs = 1
lr = 1e-3

[train.model]
kind = "convnet4"
width = 8
embedding_dim = 16
normalize = true

[train.loss]
kind = "triplet"
margin = 0.2

[train.miner]
kind = "batch-hard"

[train.sampler]
classes_per_batch = 3
samples_per_class = 4
"""


def test_grey_model_paths_and_arrays_equal_the_cli(cli, tmp_path):
    """The drawing-style preprocessing (the card's `grey_image`): image paths equal the
    folder's embedding, and an N × H × W grey array equals `margin embed` of the same .npy
    (area-resized to the model's side)."""
    paths = picture_folder(tmp_path / "imgs", ["anna", "boris", "chen", "dara", "emeka"], 6, 2)
    (tmp_path / "g.toml").write_text(GREY_CONFIG.format(data=tmp_path / "imgs"))
    run(cli, "train", "--config", tmp_path / "g.toml", "--out", tmp_path / "run", "-q", "--no-eval", "--batches-per-epoch", 2)
    m = margin.Model.load(tmp_path / "run")
    run(cli, "embed", "--model", tmp_path / "run", "--input", tmp_path / "imgs", "--out", tmp_path / "e.npy")
    np.testing.assert_array_equal(m.embed(paths), np.load(tmp_path / "e.npy"))
    grey = np.random.default_rng(3).random((5, 24, 20)).astype(np.float32)
    np.save(tmp_path / "g.npy", grey)
    run(cli, "embed", "--model", tmp_path / "run", "--input", tmp_path / "g.npy", "--out", tmp_path / "g_e.npy", "--raw")
    want = np.load(tmp_path / "g_e.npy")
    np.testing.assert_array_equal(m.embed(grey, normalize=False), want)
    np.testing.assert_array_equal(m.embed(grey[:, None], normalize=False), want)
    with pytest.raises(ValueError, match="grey images"):
        m.embed(grey.reshape(5, -1))
