"""Readers on small files written in the exact published formats, on broken files, and the checked download."""
import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from reslab import data, readers
from reslab.readers import DatasetError

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ---- writers of the real formats ----

def write_idx(path, array, magic=None):
    """IDX as published: big-endian magic 0x0800 + ndim (2051 images, 2049 labels), big-endian dims, bytes."""
    array = np.asarray(array, np.uint8)
    raw = struct.pack(f">{1 + array.ndim}I", magic or 0x0800 + array.ndim, *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def write_fashion(root, n_train=5, n_test=3, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"train": (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train)),
              "t10k": (rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))}
    suffix = ".gz" if gz else ""
    for split, (x, y) in arrays.items():
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", x)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", y)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Pickles str and bytes as Python 2's BINSTRING, as the cPickle that wrote the real batches did.

    (Python 3's protocol 2 would route bytes through a `_codecs.encode` global that the real files lack.)
    """
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        short = len(raw) < 256
        self.write((pickle.SHORT_BINSTRING + bytes([len(raw)])) if short else
                   (pickle.BINSTRING + struct.pack("<i", len(raw))))
        self.write(raw)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_str


def py2_pickle(obj):
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    # numpy 2 names the array constructor numpy._core; the published batches (numpy 1) say numpy.core
    return out.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar_batch(x, y):
    return py2_pickle({b"data": x.reshape(len(x), -1), b"labels": [int(v) for v in y],
                       b"batch_label": b"training batch", b"filenames": [b"img.png"] * len(y)})


def write_cifar(root, sizes=(2, 2, 2, 2, 2), n_test=3, archive=False, seed=0):
    """The python version: data_batch_1..5, test_batch, batches.meta in cifar-10-batches-py/, or its .tar.gz."""
    rng = np.random.default_rng(seed)
    arrays = {f"data_batch_{i}": (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n))
              for i, n in enumerate(sizes, 1)}
    arrays["test_batch"] = (rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n_test))
    files = {name: cifar_batch(x, y) for name, (x, y) in arrays.items()}
    files["batches.meta"] = py2_pickle({b"label_names": [c.encode() for c in CIFAR_CLASSES],
                                        b"num_cases_per_batch": 10000, b"num_vis": 3072})
    if archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, blob in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (root / "cifar-10-batches-py").mkdir()
        for name, blob in files.items():
            (root / "cifar-10-batches-py" / name).write_bytes(blob)
    return arrays


def digests(path):
    blob = path.read_bytes()
    return {"md5": hashlib.md5(blob).hexdigest(), "sha256": hashlib.sha256(blob).hexdigest()}


# ---- good files ----

@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_exact_pixels_and_labels(tmp_path, gz):
    arrays = write_fashion(tmp_path, gz=gz)
    (train_x, train_y), (test_x, test_y), classes = readers.DATASETS["fashion-mnist"].read(tmp_path)
    assert train_x.shape == (5, 1, 28, 28) and test_x.shape == (3, 1, 28, 28)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64
    np.testing.assert_array_equal(train_x[:, 0], arrays["train"][0])
    np.testing.assert_array_equal(test_x[:, 0], arrays["t10k"][0])
    np.testing.assert_array_equal(train_y, arrays["train"][1])
    np.testing.assert_array_equal(test_y, arrays["t10k"][1])
    assert classes == FASHION_CLASSES


def test_fashion_mnist_through_data_load(tmp_path):
    arrays = write_fashion(tmp_path)
    d = data.load("fashion-mnist", root=tmp_path, val_size=2)
    assert (len(d.train), len(d.val), len(d.test)) == (3, 2, 3) and d.shape == (1, 28, 28)
    assert d.classes == FASHION_CLASSES and d.train.x.dtype == torch.float32 and d.train.y.dtype == torch.int64
    x, y = arrays["train"]
    np.testing.assert_array_equal(torch.cat([d.train.y, d.val.y]).numpy(), y)
    np.testing.assert_array_equal(d.test.y.numpy(), arrays["t10k"][1])
    pixels = x / 255.0
    mean, std = pixels[:3].mean(), pixels[:3].std()  # normalised with the statistics of the training part only
    np.testing.assert_allclose(d.val.x[:, 0].numpy(), (pixels[3:] - mean) / std, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_reads_exact_pixels_labels_and_classes(tmp_path, archive):
    arrays = write_cifar(tmp_path, archive=archive)
    (train_x, train_y), (test_x, test_y), classes = readers.DATASETS["cifar10"].read(tmp_path)
    assert train_x.shape == (10, 3, 32, 32) and test_x.shape == (3, 3, 32, 32)
    assert train_x.dtype == np.uint8 and train_y.dtype == np.int64 and test_y.dtype == np.int64
    batches = [arrays[f"data_batch_{i}"] for i in range(1, 6)]
    np.testing.assert_array_equal(train_x, np.concatenate([x for x, _ in batches]))  # batches 1..5 in order
    np.testing.assert_array_equal(train_y, np.concatenate([y for _, y in batches]))
    np.testing.assert_array_equal(test_x, arrays["test_batch"][0])
    np.testing.assert_array_equal(test_y, arrays["test_batch"][1])
    # a row of b"data" is 1024 red, then 1024 green, then 1024 blue values, each 32x32 row-major
    row = arrays["data_batch_1"][0].reshape(-1)
    assert train_x[0, 1, 2, 3] == row[1024 + 2 * 32 + 3] and train_x[0, 2, 31, 0] == row[2048 + 31 * 32]
    assert classes == CIFAR_CLASSES


def test_cifar10_through_data_load(tmp_path):
    arrays = write_cifar(tmp_path, archive=True)
    d = data.load("cifar10", root=tmp_path, val_size=4)
    assert (len(d.train), len(d.val), len(d.test)) == (6, 4, 3) and d.shape == (3, 32, 32)
    assert d.classes == CIFAR_CLASSES
    np.testing.assert_array_equal(d.test.y.numpy(), arrays["test_batch"][1])
    np.testing.assert_allclose(d.train.x.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)  # per-channel, train stats
    np.testing.assert_allclose(d.train.x.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)


# ---- broken files: one clear DatasetError naming the file, the problem and the fix ----

def read_error(name, root):
    with pytest.raises(DatasetError) as info:
        readers.DATASETS[name].read(root)
    message = str(info.value)
    assert f"reslab.readers.download({name!r}" in message  # always says what to do
    return message


def test_fashion_missing_file(tmp_path):
    write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert "missing t10k-labels-idx1-ubyte.gz" in read_error("fashion-mnist", tmp_path)


def test_fashion_truncated_gzip(tmp_path):
    write_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    message = read_error("fashion-mnist", tmp_path)
    assert str(path) in message and "truncated" in message


def test_fashion_truncated_payload(tmp_path):
    write_fashion(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    message = read_error("fashion-mnist", tmp_path)
    assert f"{path} declares 3 x 28 x 28 = 2352 bytes of data but holds 2342" in message and "truncated" in message


def test_fashion_wrong_magic(tmp_path):
    write_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((5, 28, 28)), magic=2049)  # a label file's magic number
    message = read_error("fashion-mnist", tmp_path)
    assert f"{path} starts with magic number 2049, expected 2051" in message


def test_fashion_mismatched_counts(tmp_path):
    write_fashion(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4))
    message = read_error("fashion-mnist", tmp_path)
    assert "train-images-idx3-ubyte.gz holds 5 images but" in message
    assert "train-labels-idx1-ubyte.gz holds 4 labels" in message


def test_fashion_label_out_of_range(tmp_path):
    write_fashion(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [1, 10, 2])
    assert "t10k-labels-idx1-ubyte.gz has labels outside 0..9" in read_error("fashion-mnist", tmp_path)


def test_cifar_nothing_there(tmp_path):
    message = read_error("cifar10", tmp_path)
    assert "neither the folder cifar-10-batches-py/ nor the archive cifar-10-python.tar.gz" in message


def test_cifar_missing_batch(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert "missing data_batch_3" in read_error("cifar10", tmp_path)


def test_cifar_truncated_batch(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:5000])
    message = read_error("cifar10", tmp_path)
    assert f"{path} is not a readable CIFAR-10 python batch" in message and "truncated" in message


def test_cifar_truncated_archive(tmp_path):
    write_cifar(tmp_path, archive=True)
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:-200])
    message = read_error("cifar10", tmp_path)
    assert f"{path} cannot be unpacked" in message and "truncated" in message


def test_cifar_mismatched_counts(tmp_path):
    write_cifar(tmp_path)
    x = np.zeros((2, 3, 32, 32), np.uint8)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(cifar_batch(x, [1, 2, 3]))
    assert "data_batch_2 holds 2 images but" in read_error("cifar10", tmp_path)


def test_cifar_not_a_batch(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(py2_pickle({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}))
    assert f"{path} lacks b'data' (uint8 N x 3072)" in read_error("cifar10", tmp_path)


def test_cifar_pickle_cannot_run_code(tmp_path):
    """A batch that would call os.mkdir when plainly unpickled is refused and nothing runs."""
    write_cifar(tmp_path)
    target = tmp_path / "created-by-pickle"

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(target),)

    path = tmp_path / "cifar-10-batches-py" / "data_batch_4"
    path.write_bytes(py2_pickle({b"data": Payload(), b"labels": []}))
    message = read_error("cifar10", tmp_path)
    assert f"refusing to load {os.mkdir.__module__}.mkdir" in message and str(path) in message
    assert not target.exists()


# ---- checksums and download ----

def test_verify_file_reports_the_mismatch(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"residual")
    good = digests(path)
    readers.verify_file(path, good)
    bad = {**good, "sha256": "0" * 64}
    with pytest.raises(DatasetError, match=f"{path}: sha256 checksum is {good['sha256']}, expected {'0' * 64}"):
        readers.verify_file(path, bad)


def mirror_of(name, tmp_path, monkeypatch, write):
    """A file:// mirror of dataset ``name`` holding our small files, whose hashes the registry then expects."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write(mirror)
    reader = readers.DATASETS[name]
    checksums = {f: digests(mirror / f) for f in reader.checksums}
    monkeypatch.setitem(readers.DATASETS, name, dataclasses.replace(reader, checksums=checksums))
    return mirror.as_uri() + "/"


@pytest.mark.parametrize("name, write", [("fashion-mnist", write_fashion),
                                         ("cifar10", lambda root: write_cifar(root, archive=True))])
def test_download_verifies_and_then_reads(tmp_path, monkeypatch, name, write):
    url = mirror_of(name, tmp_path, monkeypatch, write)
    root = readers.download(name, tmp_path / "data", base_url=url)
    assert sorted(p.name for p in root.iterdir()) == sorted(readers.DATASETS[name].checksums)
    expected = readers.DATASETS[name].read(tmp_path / "mirror")
    for got, want in zip(readers.DATASETS[name].read(root)[:2], expected[:2]):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_download_checksum_mismatch_keeps_nothing(tmp_path, monkeypatch):
    url = mirror_of("cifar10", tmp_path, monkeypatch, lambda root: write_cifar(root, archive=True))
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 1  # one flipped bit
    archive.write_bytes(bytes(blob))
    with pytest.raises(DatasetError) as info:
        readers.download("cifar10", tmp_path / "data", base_url=url)
    message = str(info.value)
    assert f"download of {url}cifar-10-python.tar.gz failed" in message and "checksum is" in message
    assert "run download again" in message
    assert list((tmp_path / "data").iterdir()) == []


def test_download_keeps_intact_files_and_replaces_damaged_ones(tmp_path, monkeypatch):
    url = mirror_of("fashion-mnist", tmp_path, monkeypatch, write_fashion)
    root = readers.download("fashion-mnist", tmp_path / "data", base_url=url)
    damaged, intact = root / "train-images-idx3-ubyte.gz", root / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(b"junk")
    before = intact.stat().st_mtime_ns
    readers.download("fashion-mnist", root, base_url=url)
    assert damaged.read_bytes() == (tmp_path / "mirror" / damaged.name).read_bytes()
    assert intact.stat().st_mtime_ns == before


def test_download_unreachable(tmp_path):
    with pytest.raises(DatasetError, match="download of .*train-images-idx3-ubyte.gz failed"):
        readers.download("fashion-mnist", tmp_path, base_url=(tmp_path / "nowhere").as_uri() + "/")


# ---- data.load's own errors ----

def test_unknown_dataset_names():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known: .*'fashion-mnist'.*'cifar10'"):
        data.load("nope")
    with pytest.raises(ValueError, match="unknown dataset 'nope'; downloadable: 'fashion-mnist', 'cifar10'"):
        readers.download("nope", "/nonexistent")


def test_load_file_dataset_without_root():
    with pytest.raises(ValueError, match=r"dataset 'cifar10' is read from local files: pass root="):
        data.load("cifar10")
