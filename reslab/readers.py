"""Fashion-MNIST (IDX files) and CIFAR-10 (python batches) read from a local folder, plus a checked download.

torchvision cannot be installed next to the CPU torch we pin, and the formats are small, so we read them
ourselves. Reading checks structure (magic numbers, sizes, counts, label range); ``download`` checks hashes.
Every way a file can be wrong ends in one ``DatasetError`` that names the file, the problem and the fix.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import shutil
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_DAMAGED = (OSError, EOFError, zlib.error, tarfile.TarError)


class DatasetError(ValueError):
    """A dataset file is missing, damaged, or not what it claims to be."""


def verify_file(path, digests: dict[str, str]) -> None:
    """Raise DatasetError unless the file at ``path`` has every digest in ``digests`` ({algorithm: hex})."""
    hashes = {algorithm: hashlib.new(algorithm) for algorithm in digests}
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            for h in hashes.values():
                h.update(chunk)
    for algorithm, expected in digests.items():
        if hashes[algorithm].hexdigest() != expected:
            raise DatasetError(f"{path}: {algorithm} checksum is {hashes[algorithm].hexdigest()}, expected "
                               f"{expected}; the file is damaged or is not the official release")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes, gzipped or not, as an array of the shape its header declares.

    The magic number is 0x08 (unsigned byte) * 256 + number of dimensions: 2051 for images, 2049 for labels.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except _DAMAGED as e:
        raise DatasetError(f"{path} cannot be decompressed ({e}): it is truncated or corrupt") from e
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} has only {len(raw)} bytes, fewer than its {header}-byte header: it is truncated")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DatasetError(f"{path} starts with magic number {found}, expected {magic} "
                           f"(2051 = images, 2049 = labels): it is not the IDX file its name says")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    if len(raw) - header != math.prod(shape):
        raise DatasetError(f"{path} declares {' x '.join(map(str, shape))} = {math.prod(shape)} bytes of data but "
                           f"holds {len(raw) - header}: it is truncated or corrupt")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _checked(images: np.ndarray, labels, images_at: str, labels_at: str, n_classes: int):
    """The pair as (uint8 images, int64 labels), after checking that they belong together."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels):
        raise DatasetError(f"{images_at} holds {len(images)} images but {labels_at} holds {len(labels)} labels: "
                           f"one of them is truncated or they come from different releases")
    if labels.size and not 0 <= labels.min() <= labels.max() < n_classes:
        raise DatasetError(f"{labels_at} has labels outside 0..{n_classes - 1}: it is corrupt")
    return images, labels


@dataclass(frozen=True)
class Reader:
    """One dataset: where its official files live, their hashes, and how to read them from ``root``."""
    name: str
    base_url: str
    checksums: dict[str, dict[str, str]]  # downloaded file name -> {algorithm: hex digest}
    classes: tuple[str, ...]

    def read(self, root):
        """((train_x, train_y), (test_x, test_y), classes): x uint8 N x C x H x W, y int64 N."""
        root = Path(root)
        try:
            return self._read(root)
        except DatasetError as e:
            raise DatasetError(f"{e}.\nTo fix it, fetch the official files: reslab.readers.download("
                               f"{self.name!r}, {str(root)!r}) on a machine with internet, or copy "
                               f"{', '.join(self.checksums)} by hand from {self.base_url} into {root}") from e.__cause__

    def _read(self, root: Path):
        raise NotImplementedError


class FashionMNIST(Reader):
    """The four IDX files, gzipped as published or un-gzipped, directly in ``root``."""

    def _read(self, root):
        def part(split, kind, magic):
            stem = f"{split}-{kind}-idx{magic & 0xFF}-ubyte"
            for path in (root / f"{stem}.gz", root / stem):
                if path.is_file():
                    return read_idx(path, magic), path
            raise DatasetError(f"missing {stem}.gz (or un-gzipped {stem}) in {root}")

        def split(prefix):
            (x, x_at), (y, y_at) = part(prefix, "images", 2051), part(prefix, "labels", 2049)
            return _checked(x[:, None], y, x_at, y_at, len(self.classes))

        return split("train"), split("t10k"), self.classes


class _BatchUnpickler(pickle.Unpickler):
    """Builds only what CIFAR-10 batches hold: dicts, lists, strings, ints and numpy arrays.

    Any other global (the way a pickle runs code) is refused before it is looked up.
    """
    SAFE = {("numpy.core.multiarray", "_reconstruct"): np.ndarray(0).__reduce__()[0],  # numpy 1, as in the files
            ("numpy._core.multiarray", "_reconstruct"): np.ndarray(0).__reduce__()[0],  # numpy 2
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype}

    def find_class(self, module, name):
        if (module, name) not in self.SAFE:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}, which CIFAR-10 batches never contain")
        return self.SAFE[module, name]


class CIFAR10(Reader):
    """The python batches in ``root/cifar-10-batches-py/``, or inside ``root/cifar-10-python.tar.gz``."""
    FOLDER = "cifar-10-batches-py"
    ARCHIVE = "cifar-10-python.tar.gz"
    FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")

    def _files(self, root):
        """Yields (name, where, bytes) for each of FILES found in the folder or else in the archive."""
        folder, archive = root / self.FOLDER, root / self.ARCHIVE
        if folder.is_dir():
            for name in self.FILES:
                if (folder / name).is_file():
                    yield name, str(folder / name), (folder / name).read_bytes()
        elif archive.is_file():
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    for member in tar:
                        name = member.name.removeprefix(self.FOLDER + "/")
                        if name in self.FILES and member.isfile():
                            yield name, f"{archive}:{member.name}", tar.extractfile(member).read()
            except _DAMAGED as e:
                raise DatasetError(f"{archive} cannot be unpacked ({e}): it is truncated or corrupt") from e
        else:
            raise DatasetError(f"{root} holds neither the folder {self.FOLDER}/ nor the archive {self.ARCHIVE}")

    def _read(self, root):
        loaded = {}
        for name, where, blob in self._files(root):
            try:
                obj = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
            except Exception as e:  # damaged bytes can fail anywhere inside the pickle machine
                raise DatasetError(f"{where} is not a readable CIFAR-10 python batch ({e}): it is truncated, "
                                   f"corrupt, or some other file") from e
            if not isinstance(obj, dict):
                raise DatasetError(f"{where} holds a {type(obj).__name__}, not the dict of a CIFAR-10 batch")
            loaded[name] = where, obj
        missing = [name for name in self.FILES if name not in loaded]
        if missing:
            raise DatasetError(f"missing {', '.join(missing)} in the CIFAR-10 files under {root}")
        names = loaded["batches.meta"][1].get(b"label_names")
        if not (isinstance(names, list) and len(names) == len(self.classes)):
            raise DatasetError(f"{loaded['batches.meta'][0]} lacks the list of {len(self.classes)} label_names")
        classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)

        def batch(name):
            where, obj = loaded[name]
            data, labels = obj.get(b"data"), obj.get(b"labels")
            if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                    and data.shape[1] == 3 * 32 * 32 and isinstance(labels, list)):
                raise DatasetError(f"{where} lacks b'data' (uint8 N x 3072) or b'labels' (list): not a CIFAR-10 batch")
            return _checked(data.reshape(-1, 3, 32, 32), labels, where, where, len(classes))

        train = [batch(f"data_batch_{i}") for i in range(1, 6)]
        train_xy = tuple(np.concatenate(part) for part in zip(*train))
        return train_xy, batch("test_batch"), classes


DATASETS: dict[str, Reader] = {
    "fashion-mnist": FashionMNIST(
        "fashion-mnist",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        {"train-images-idx3-ubyte.gz": {"md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                        "sha256": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"},
         "train-labels-idx1-ubyte.gz": {"md5": "25c81989df183df01b3e8a0aad5dffbe",
                                        "sha256": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
         "t10k-images-idx3-ubyte.gz": {"md5": "bef4ecab320f06d8554ea6380940ec79",
                                       "sha256": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"},
         "t10k-labels-idx1-ubyte.gz": {"md5": "bb300cfdad3c16e7a12a480ee83cd310",
                                       "sha256": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"}},
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")),
    "cifar10": CIFAR10(
        "cifar10",
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-python.tar.gz": {"md5": "c58f30108f718f92721af3b95e74349a",
                                    "sha256": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}},
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
}


def download(name: str, root, base_url: str | None = None) -> Path:
    """Fetch the official files of dataset ``name`` into ``root``; files already there and intact are kept.

    Each file must match both its MD5 and its SHA-256. The MD5s are the ones the authors publish (Zalando's
    README, the CIFAR page) and torchvision checks. The authors publish no SHA-256: ours are the values that
    independent projects record next to those same MD5s (Keras pins the CIFAR-10 one); they could not be
    recomputed here, where the files cannot be downloaded.
    ``base_url`` replaces the official location (a mirror, or a ``file://`` folder).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; downloadable: {', '.join(map(repr, DATASETS))}")
    reader, root = DATASETS[name], Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for filename, digests in reader.checksums.items():
        target = root / filename
        if target.is_file():
            try:
                verify_file(target, digests)
            except DatasetError:
                target.unlink()  # damaged or foreign: fetch it again
            else:
                continue
        url, partial = (base_url or reader.base_url) + filename, root / (filename + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
            verify_file(partial, digests)
        except (OSError, ValueError) as e:  # network, bad URL, or a checksum mismatch (DatasetError)
            partial.unlink(missing_ok=True)
            raise DatasetError(f"download of {url} failed: {e}.\nCheck the connection and run download again, "
                               f"or fetch the file by hand into {root} (official source: {reader.base_url})") from e
        partial.replace(target)
    return root
