"""Atomic file writes: write to a temp file beside the target, fsync, then rename.

A reader (or a process killed mid-write) never sees a half-written file: the target
is either the old content or the new one. This is the one helper for output files, and
for secrets on disk (``write_private``: readable by the owner only from the first byte).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO, Any


def _create_temp(target: Path, mode: int = 0o666) -> Path:
    """A new empty file beside ``target`` with the mode a plain ``open(path, "w")`` gives.

    Created with mode 0666 so the kernel applies the process umask itself (mkstemp's files
    are 0600, and reading the umask means flipping it, which is unsafe with threads).
    A narrower ``mode`` (0600 for secrets) is never widened by the umask.
    """
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        except FileExistsError:
            continue
        return tmp


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], mode: int = 0o666) -> Generator[Path, None, None]:
    """Yield a temp path beside ``target``; on success rename it over ``target``.

    On any exception the temp file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target, mode)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(
    target: str | os.PathLike[str], mode: str = "w", **kwargs: Any
) -> Generator[IO, None, None]:
    """Open a temp file for writing; it replaces ``target`` only if the block succeeds."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    with atomic_open(target, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def write_private(target: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` to ``target``, readable by its owner only (0600) throughout."""
    with atomic_path(target, mode=0o600) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike[str], data: Any) -> None:
    """Atomically write ``data`` as stable, human-readable JSON (sorted keys, trailing newline)."""
    write_text(target, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_with(target: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Atomically create ``target`` by calling ``writer(temp_path)`` (e.g. ``joblib.dump``)."""
    with atomic_path(target) as tmp:
        writer(tmp)


def write_symlink(link: str | os.PathLike[str], points_to: str) -> None:
    """Atomically make ``link`` a symlink to ``points_to`` (replacing any file or link there)."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(points_to, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
