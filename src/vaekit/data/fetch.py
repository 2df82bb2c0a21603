"""Finding a registered dataset's files, and downloading missing ones into the cache.

Files are looked for under ``data_dir``, then ``$VAEKIT_DATA``, then the cache
(``$XDG_CACHE_HOME/vaekit`` or ``~/.cache/vaekit``); in each root first in
``<root>/<dataset>/`` and then in ``<root>/``. A download goes to a temporary file beside its
target, is checked against its SHA256 and only then renamed into place, so an interrupted or
corrupt download never leaves a file that looks valid.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from ..exceptions import DataError

TIMEOUT_S = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a registered dataset's files come from: base URL and SHA256 of each file."""

    name: str
    title: str
    base_url: str
    sha256: dict[str, str]

    @property
    def mirror_variable(self) -> str:
        """The environment variable that overrides ``base_url``."""
        return "VAEKIT_MIRROR_" + self.name.upper().replace("-", "_")

    def url(self, file: str) -> str:
        """The download address of ``file``, through the mirror when one is set."""
        base = os.environ.get(self.mirror_variable) or self.base_url
        return base.rstrip("/") + "/" + file


def cache_root() -> Path:
    """The folder downloads go to."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vaekit"


def _roots(data_dir: str | os.PathLike | None) -> list[Path]:
    roots = [Path(data_dir)] if data_dir is not None else []
    if env := os.environ.get("VAEKIT_DATA"):
        roots.append(Path(env))
    return [root.expanduser() for root in roots] + [cache_root()]


def locate(source: Source, data_dir: str | os.PathLike | None, download: bool) -> dict[str, Path]:
    """The path of each of ``source``'s files, downloading missing ones when allowed."""
    roots = _roots(data_dir)
    found = {}
    for file in source.sha256:
        candidates = (path for root in roots for path in (root / source.name / file, root / file))
        path = next((p for p in candidates if p.is_file()), None)
        if path is not None:
            found[file] = path
    missing = [file for file in source.sha256 if file not in found]
    if not missing:
        return found
    if not download or data_dir is not None:
        where = roots[0] / source.name
        put = f"{source.title} files are missing: put {', '.join(missing)} in {where}/"
        if download:
            raise DataError(f"{put}, or leave out --data-dir to download them into the cache.")
        raise DataError(f"{put} (or pass --data-dir / set VAEKIT_DATA), or allow the download.")
    for i, file in enumerate(missing):
        try:
            found[file] = download_file(source, file)
        except _Unreachable as err:  # offline: name every file still to be put in place
            folder = cache_root() / source.name
            raise DataError(
                f"Could not download {err.url} ({err.reason}); check the network, or put "
                f"{', '.join(missing[i:])} in {folder}/ yourself (or pass --data-dir / set "
                "VAEKIT_DATA)."
            ) from None
    return found


class _Unreachable(Exception):
    """A download that could not reach its server (``locate`` says which files are missing)."""

    def __init__(self, url: str, reason):
        super().__init__(url)
        self.url, self.reason = url, reason


def download_file(source: Source, file: str) -> Path:
    """Download one file into the cache, verify its SHA256 and move it into place."""
    target = cache_root() / source.name / file
    url = source.url(file)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{file}.", suffix=".part")
    except OSError as err:
        raise DataError(f"Cannot write to the cache folder {target.parent} ({err}).") from None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, target)
        if digest != source.sha256[file]:
            raise DataError(
                f"The download of {file} from {url} does not match its SHA256 checksum "
                f"(expected {source.sha256[file]}, got {digest}), so it was deleted; try again, "
                f"or check {source.mirror_variable} if you set it."
            )
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _fetch(url: str, out: BinaryIO, target: Path) -> str:
    """Stream ``url`` into ``out`` with a progress bar; return the SHA256 of what was received."""
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=target.name, leave=False, disable=None
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Unreachable(url, getattr(err, "reason", None) or err) from None
    if total is not None and received != total:
        raise DataError(
            f"The download of {url} stopped after {received} of {total} bytes; run the command "
            "again."
        )
    return digest.hexdigest()
