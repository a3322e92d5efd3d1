"""Dataset loaders: where they look, what they read, how they fail."""

import gzip
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from keras_tt import datasets
from keras_tt.datasets import DataNotFoundError
from keras_tt.datasets import find_langid_dir
from keras_tt.datasets import find_mnist_dir
from keras_tt.datasets import load_langid
from keras_tt.datasets import load_mnist
from keras_tt.datasets import read_idx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST_ENV = "KERAS_TT_MNIST_DIR"
LANGID_ENV = "KERAS_TT_LANGID_DIR"


def _write_idx(path, array):
    """An IDX file written from the format's definition (big-endian)."""
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + payload)


def _fake_mnist(folder, n=20, seed=0, train=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(folder / "t10k-labels-idx1-ubyte", labels)  # not gzipped
    if train:
        _write_idx(folder / "train-images-idx3-ubyte.gz", images[::-1].copy())
        _write_idx(folder / "train-labels-idx1-ubyte.gz", labels[::-1].copy())
    return images, labels


@pytest.fixture
def no_data_anywhere(tmp_path, monkeypatch):
    """No env vars, an empty user data folder, a working dir without data."""
    monkeypatch.delenv(MNIST_ENV, raising=False)
    monkeypatch.delenv(LANGID_ENV, raising=False)
    monkeypatch.setenv("KERAS_TT_HOME", str(tmp_path / "home"))
    work = tmp_path / "work" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


# --------------------------------------------------------------- read_idx


def test_read_idx_matches_the_written_array(tmp_path, rng):
    array = rng.integers(-(2**31), 2**31 - 1, (3, 4, 5), dtype=np.int32)
    _write_idx(tmp_path / "a.idx", array)
    read = read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(read, array)
    assert read.shape == (3, 4, 5)


def test_read_idx_refuses_truncated_and_foreign_files(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.idx", array)
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(data[:-1])
    with pytest.raises(ValueError, match=r"truncated or padded.*\(2, 3, 4\)"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "text.idx").write_text("hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "text.idx")
    (tmp_path / "fake.gz").write_text("not gzip")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        read_idx(tmp_path / "fake.gz")


# ------------------------------------------------------------ where to look


def test_search_order_path_then_env_then_user_then_checkout(
    no_data_anywhere, monkeypatch
):
    root = no_data_anywhere
    checkout = root / "work" / "shared" / "data" / "mnist"
    user = root / "home" / "data" / "mnist"
    env = root / "env"
    given = root / "given"
    for folder in (checkout, user, env, given):
        _fake_mnist(folder)
    assert find_mnist_dir() == user
    monkeypatch.setenv(MNIST_ENV, str(env))
    assert find_mnist_dir() == env
    assert find_mnist_dir(given) == given
    monkeypatch.delenv(MNIST_ENV)
    (user / "t10k-images-idx3-ubyte.gz").unlink()
    # Beside the checkout: found from the working directory's parents.
    assert find_mnist_dir() == checkout


def test_checkout_data_is_found_from_the_working_directory_only(
    no_data_anywhere, monkeypatch
):
    assert find_mnist_dir() is None  # the package's own location is unused
    _fake_mnist(no_data_anywhere / "work" / "shared" / "data" / "mnist")
    assert find_mnist_dir() is not None
    monkeypatch.chdir(no_data_anywhere)
    assert find_mnist_dir() is None


def test_a_wrong_environment_variable_is_an_error(
    no_data_anywhere, monkeypatch
):
    _fake_mnist(no_data_anywhere / "home" / "data" / "mnist")
    empty = no_data_anywhere / "empty"
    empty.mkdir()
    monkeypatch.setenv(MNIST_ENV, str(empty))
    with pytest.raises(DataNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    assert f"{MNIST_ENV}={str(empty)!r} names a folder without" in message
    assert "t10k-images-idx3-ubyte[.gz]" in message
    monkeypatch.setenv(MNIST_ENV, str(no_data_anywhere / "nowhere"))
    with pytest.raises(DataNotFoundError, match="names no folder with"):
        find_mnist_dir()


def test_a_wrong_path_is_an_error(no_data_anywhere):
    with pytest.raises(DataNotFoundError, match=r"Received: path=.*no such"):
        load_mnist(no_data_anywhere / "nowhere")


def test_nothing_found_names_every_way_to_supply_the_data(no_data_anywhere):
    with pytest.raises(DataNotFoundError) as info:
        load_mnist(download=False)
    message = str(info.value)
    for words in (
        "--data PATH",
        "$KERAS_TT_MNIST_DIR",
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
        str(no_data_anywhere / "home" / "data" / "mnist"),
        "shared/data/mnist",
    ):
        assert words in message
    assert "\n" not in message
    assert isinstance(info.value, FileNotFoundError)


def test_a_failed_download_says_where_to_put_the_files(
    no_data_anywhere, monkeypatch
):
    import keras

    def offline():
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataNotFoundError) as info:
        load_mnist()
    message = str(info.value)
    assert "$KERAS_TT_MNIST_DIR" in message and "--data PATH" in message
    assert "the Keras download failed too (URL fetch failure" in message


# ------------------------------------------------------------- what is read


def test_test_set_split_in_file_order_and_shuffled(tmp_path):
    images, labels = _fake_mnist(tmp_path / "m", n=20)
    data = load_mnist(tmp_path / "m", num_train=15)
    np.testing.assert_array_equal(data.x_train, images[:15])
    np.testing.assert_array_equal(data.y_test, labels[15:])
    assert "split 15/5 (train/held-out), not the 60k" in data.description
    shuffled = load_mnist(tmp_path / "m", num_train=15, seed=3)
    order = np.random.default_rng(3).permutation(20)
    np.testing.assert_array_equal(shuffled.x_train, images[order[:15]])
    np.testing.assert_array_equal(shuffled.y_test, labels[order[15:]])
    assert "shuffled with seed 3" in shuffled.description


def test_full_mnist_folder_and_test_set_only(tmp_path):
    images, labels = _fake_mnist(tmp_path / "m", n=12, train=True)
    full = load_mnist(tmp_path / "m")
    np.testing.assert_array_equal(full.x_train, images[::-1])
    np.testing.assert_array_equal(full.x_test, images)
    assert full.description.startswith("full MNIST from")
    split = load_mnist(tmp_path / "m", num_train=10, test_set_only=True)
    np.testing.assert_array_equal(split.x_train, images[:10])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_train": 0}, "Received: num_train=0"),
        ({"num_train": 20}, "between 1 and 19. Received: num_train=20"),
        ({"num_train": True}, "Received: num_train=True"),
        ({"seed": -1}, "Received: seed=-1"),
        ({"seed": 1.5}, "Received: seed=1.5"),
    ],
)
def test_invalid_arguments_are_named(tmp_path, kwargs, message):
    _fake_mnist(tmp_path / "m", n=20)
    with pytest.raises(ValueError, match=message):
        load_mnist(tmp_path / "m", **kwargs)


def test_real_mnist_test_set(mnist_dir):
    data = load_mnist(mnist_dir, num_train=8000, seed=0)
    assert data.x_train.shape == (8000, 28, 28)
    assert data.x_test.shape == (2000, 28, 28)
    # Independent reference: the labels' IDX header and class counts.
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz", "rb") as f:
        raw = f.read()
    assert struct.unpack(">I", raw[:4])[0] == 0x801
    reference = np.frombuffer(raw, np.uint8, offset=8)
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]))
    np.testing.assert_array_equal(counts, np.bincount(reference))


# ------------------------------------------------------------------ langid


def _fake_langid(folder, train_rows, test_rows):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("train.tsv.gz", train_rows),
        ("test.tsv.gz", test_rows),
    ):
        with gzip.open(folder / name, "wt", encoding="utf-8") as f:
            f.writelines(f"{word}\t{lang}\n" for word, lang in rows)


def test_langid_reads_words_and_sorted_language_codes(tmp_path):
    train = [("hund", "da"), ("chien", "fr"), ("dog", "en"), ("perro", "es")]
    _fake_langid(tmp_path / "l", train, [("chat", "fr"), ("kat", "da")])
    data = load_langid(tmp_path / "l")
    assert data.languages == ("da", "en", "es", "fr")
    assert list(data.x_train) == ["hund", "chien", "dog", "perro"]
    assert [data.languages[i] for i in data.y_train] == ["da", "fr", "en", "es"]
    assert [data.languages[i] for i in data.y_test] == ["fr", "da"]
    assert data.y_train.dtype == np.int32
    limited = load_langid(tmp_path / "l", num_train=3, num_test=1)
    assert list(limited.x_train) == ["hund", "chien", "dog"]
    assert list(limited.x_test) == ["chat"]


def test_langid_bad_rows_and_unknown_languages(tmp_path):
    _fake_langid(tmp_path / "a", [("a", "en"), ("b c", "")], [("x", "en")])
    with pytest.raises(ValueError, match=r"line 2: expected 'word<TAB>lang'"):
        load_langid(tmp_path / "a")
    _fake_langid(tmp_path / "b", [("a", "en")], [("x", "fr")])
    with pytest.raises(ValueError, match=r"holds languages \['fr'\]"):
        load_langid(tmp_path / "b")
    with pytest.raises(ValueError, match="Received: num_test=0"):
        load_langid(tmp_path / "b", num_test=0)


def test_langid_is_looked_for_like_mnist(no_data_anywhere, monkeypatch):
    with pytest.raises(DataNotFoundError) as info:
        load_langid()
    message = str(info.value)
    assert "$KERAS_TT_LANGID_DIR" in message and "--data PATH" in message
    assert "train.tsv[.gz], test.tsv[.gz]" in message
    monkeypatch.setenv(LANGID_ENV, str(no_data_anywhere))
    with pytest.raises(DataNotFoundError, match="KERAS_TT_LANGID_DIR="):
        load_langid()
    user = no_data_anywhere / "home" / "data" / "langid"
    _fake_langid(user, [("a", "en")], [("b", "en")])
    monkeypatch.delenv(LANGID_ENV)
    assert find_langid_dir() == user


def test_real_langid_files(langid_dir):
    data = load_langid(langid_dir, num_train=5000, num_test=1000)
    assert len(data.x_train) == 5000 and len(data.x_test) == 1000
    assert len(data.languages) == 10
    with gzip.open(langid_dir / "train.tsv.gz", "rt", encoding="utf-8") as f:
        first = f.readline().rstrip("\n").split("\t")
    assert data.x_train[0] == first[0]
    assert data.languages[data.y_train[0]] == first[1]


def test_public_names():
    assert set(datasets.__all__) >= {
        "load_mnist",
        "load_langid",
        "DataNotFoundError",
        "MNISTData",
        "LangIDData",
    }


# ------------------------------------------------------ the demo, no data


def test_quickstart_without_data_dies_with_one_line(tmp_path):
    env = dict(os.environ, KERAS_TT_HOME=str(tmp_path / "home"))
    env[MNIST_ENV] = str(tmp_path / "missing")
    completed = subprocess.run(
        [sys.executable, os.path.join(REPO, "examples", "quickstart.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 2
    lines = [
        line
        for line in completed.stderr.splitlines()
        if line.startswith("quickstart.py:")
    ]
    assert len(lines) == 1, completed.stderr
    assert "KERAS_TT_MNIST_DIR" in lines[0] and "--data" in lines[0]
    assert "Traceback" not in completed.stderr
