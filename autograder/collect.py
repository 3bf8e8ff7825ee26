"""A safe archive extractor for ``nbgrader zip_collect``.

Enable it in nbgrader_config.py with ``c.ZipCollectApp.extractor_plugin = "autograder.collect.SafeExtractor"``.
An archive is extracted only if every member stays inside its folder: no absolute paths, no ``..``, no
links or device files, at most ``max_members`` members and ``max_bytes`` in all. Otherwise the whole
archive is rejected with a logged reason and nothing of it is written; the other archives go on.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import PurePosixPath

from nbgrader.plugins.zipcollect import ExtractorPlugin
from traitlets import Int


class UnsafeArchive(ValueError):
    pass


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchive(f"member {name!r} would be written outside the extraction folder")
    return path


class SafeExtractor(ExtractorPlugin):
    """nbgrader's extractor, minus path traversal, links and archive bombs."""

    max_members = Int(10_000, help="Archives with more members are rejected").tag(config=True)
    max_bytes = Int(1 << 30, help="Archives that unpack to more bytes are rejected").tag(config=True)

    def _check(self, members: list[tuple[str, bool, bool, int]]) -> None:
        """members: (name, is a regular file, is a folder, size). UnsafeArchive unless all are safe."""
        for name, regular, folder, _ in members:
            _member_path(name)
            if not (regular or folder):
                raise UnsafeArchive(f"member {name!r} is a link or a special file")
        if len(members) > self.max_members:
            raise UnsafeArchive(f"{len(members)} members, more than {self.max_members}")
        if sum(size for *_, size in members) > self.max_bytes:
            raise UnsafeArchive(f"unpacks to more than {self.max_bytes} bytes")

    def extract_safely(self, archive: str, dest: str) -> None:
        """Extract ``archive`` (zip or tar) into ``dest``, or raise UnsafeArchive having written nothing."""
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                modes = [info.external_attr >> 16 for info in infos]
                self._check([(i.filename, not i.is_dir() and stat.S_IFMT(m) in (0, stat.S_IFREG), i.is_dir(),
                              i.file_size) for i, m in zip(infos, modes)])  # many zips store no file type
                self._write(dest, [(i.filename, lambda i=i: zf.open(i)) for i in infos if not i.is_dir()])
            return
        try:
            tf = tarfile.open(archive)
        except tarfile.TarError as err:
            raise UnsafeArchive(f"not a zip or tar archive ({err})") from None
        with tf:
            infos = tf.getmembers()
            self._check([(i.name, i.isfile(), i.isdir(), i.size) for i in infos])
            self._write(dest, [(i.name, lambda i=i: tf.extractfile(i)) for i in infos if i.isfile()])

    @staticmethod
    def _write(dest: str, files: list) -> None:
        for name, opener in files:  # zipfile and tarfile never read past a member's declared size
            target = os.path.join(dest, *_member_path(name).parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with opener() as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)

    def extract(self, archive_path: str, extracted_path: str) -> None:
        for root, _, files in os.walk(archive_path):
            extract_to = os.path.normpath(os.path.join(extracted_path, os.path.relpath(root, archive_path)))
            os.makedirs(extract_to, exist_ok=True)
            for name in files:
                source = os.path.join(root, name)
                stem, ext = os.path.splitext(name)
                if ext not in self.zip_ext:
                    shutil.copy(source, os.path.join(extract_to, name))
                    continue
                dest = os.path.join(extract_to, stem.removesuffix(".tar"))
                try:
                    self.extract_safely(source, dest)
                    self.log.info("Extracted %s to %s", source, dest)
                except (UnsafeArchive, zipfile.BadZipFile, OSError, EOFError) as err:
                    shutil.rmtree(dest, ignore_errors=True)
                    self.log.error("Rejected archive %s: %s", source, err)
