"""Prediction files shared through the DVC remote, so that the monitor sees every worker's.

A worker writes its predictions into its own workspace (``output/predictions/...``); on a
cluster the day's monitor task runs on one worker and would see only that worker's files.
So ``batch_inference`` also puts every file it writes under ``output/predictions/`` at
the same relative path under the default DVC remote's ``served/predictions/``
(``share_prediction``), and the monitor first gets a KST day's files from there
(``fetch_served_day``). DVC keeps its own objects under ``files/md5/`` of the same remote;
its ``gc`` deletes only paths that are hashes, never these. With the default local remote
this is a copy on the same disk.

What comes back is checked before it is used: only names of the day's pattern in the
day's two UTC folders (``batchserving.monitoring.days``), at most ``max_files`` of them,
each at most ``MAX_FILE_BYTES`` (a larger one is not fetched and is named as skipped),
each written atomically beside its target. The remote's own timeouts bound every call.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from batchserving.core.atomic import atomic_path
from batchserving.core.names import (
    LABELS_SUFFIX,
    PREDICTIONS_DIR,
    SHARED_PREDICTIONS,
    UNSHARED_DIR,
)
from batchserving.registry.git import RegistryError
from batchserving.registry.remote import remote_description

# A run puts at most this many files a run could not put before (a day of 5-minute runs).
MAX_CATCH_UP = 288
# A large batch of 10M rows is about 1 GB of CSV; anything bigger is not a served batch.
MAX_FILE_BYTES = 2 << 30


def shared_root(repo: Path) -> tuple[Any, str] | None:
    """The default DVC remote's filesystem (its config and credentials) and the shared path.

    None outside a DVC repo or without a default remote: then there is nothing to share with.
    DVC's config and its remote filesystem, as ``Repo.cloud.get_remote`` builds them, without
    opening the repo (that import and index are most of a scheduled run's cost otherwise).
    """
    if not (repo / ".dvc").is_dir():  # a person's predict outside a model repo
        return None
    from dvc.config import Config
    from dvc.fs import get_cloud_fs

    config = Config(dvc_dir=str(repo / ".dvc"))
    name = config["core"].get("remote")
    if not name:
        return None
    cls, fs_config, path = get_cloud_fs(config, name=name)
    fs = cls(**fs_config)
    return fs, fs.join(path, *SHARED_PREDICTIONS.split("/"))


def remote_error(repo: Path, action: str, exc: BaseException) -> RegistryError:
    """What failed, against which remote (no credentials), and what to do."""
    try:
        described = remote_description(repo)
    except Exception:  # a config DVC cannot read: the error is that, not its description
        described = "(its configuration could not be read: `dvc remote list`)"
    return RegistryError(
        f"could not {action} the DVC remote {described} "
        f"({type(exc).__name__}); check that it answers (`dvc remote list`) and its "
        "credentials (connection dvc_remote)"
    )


def shared_name(repo: Path, output: Path) -> str | None:
    """``output``'s path under ``output/predictions/`` (POSIX), or None if it is elsewhere."""
    root = (repo / PREDICTIONS_DIR).resolve()
    try:
        return (repo / output).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def put_file_and_labels(fs: Any, root: str, repo: Path, name: str) -> list[str]:
    """Put ``output/predictions/<name>`` and its labels file, if any; the names put."""
    local = repo / PREDICTIONS_DIR / name
    labels = local.with_name(local.name.rsplit(".", 1)[0] + LABELS_SUFFIX)
    names = [name] + (
        [posixpath.join(posixpath.dirname(name), labels.name)] if labels.is_file() else []
    )
    # Pending, then deleted by a person, or a marker naming a path outside: nothing to put.
    if not local.is_file() or shared_name(repo, local) != name:
        return []
    for path, relative in zip([local, labels], names, strict=False):
        target = fs.join(root, *relative.split("/"))
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.put_file(str(path), target)
    return names


def marker(repo: Path, name: str) -> Path:
    """The empty file that says ``name`` is not on the remote yet (its name quoted)."""
    return repo / UNSHARED_DIR / quote(name, safe="")


def pending(repo: Path) -> list[str]:
    """The names this workspace could not put yet, oldest first (at most MAX_CATCH_UP)."""
    folder = repo / UNSHARED_DIR
    if not folder.is_dir():
        return []
    names = sorted(unquote(p.name) for p in folder.iterdir() if p.is_file())
    return names[:MAX_CATCH_UP]


@dataclass(frozen=True)
class Shared:
    """What ``share_prediction`` did: the names put, those still pending, and why."""

    put: list[str]
    pending: int
    error: str | None


def share_prediction(repo: Path, output: Path) -> Shared:
    """Put ``output`` (and its labels file) on the remote, after any file not put before.

    A file outside ``output/predictions/`` (a person's ``--output``) is not shared. A
    remote that fails is not the run's failure: the predictions are written, so the file
    is marked pending (``UNSHARED_DIR``) and the next run puts it first.
    """
    name = shared_name(repo, output)
    if name is None:
        return Shared([], 0, None)
    left = [n for n in pending(repo) if n != name] + [name]
    done: list[str] = []
    try:
        if (location := shared_root(repo)) is None:
            return Shared([], 0, None)
        fs, root = location
        while left:
            done += put_file_and_labels(fs, root, repo, left[0])
            marker(repo, left.pop(0)).unlink(missing_ok=True)
    except Exception as exc:  # the remote's own errors differ by kind (OSError, botocore, DVC)
        for item in left:
            path = marker(repo, item)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        return Shared(done, len(left), str(remote_error(repo, "put predictions on", exc)))
    return Shared(done, 0, None)


@dataclass
class Fetched:
    """What ``fetch_served_day`` found: files fetched, already here, and refused."""

    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"fetched": len(self.fetched), "present": len(self.present), "skipped": self.skipped}


def listing(fs: Any, folder: str) -> list[dict[str, Any]]:
    """The files of a shared folder; none if it does not exist."""
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        return []
    return [e for e in entries if e.get("type") == "file"]


def day_entries(fs: Any, root: str, day: date) -> list[tuple[str, dict[str, Any]]]:
    """(UTC folder, entry) for every shared file of a KST day's two UTC folders."""
    from batchserving.monitoring.days import window

    start, end = window(day)
    found = []
    for folder in sorted({start.date(), (end - timedelta(seconds=1)).date()}):
        for entry in listing(fs, fs.join(root, folder.isoformat())):
            found.append((folder.isoformat(), entry))
    return found


def chosen_entries(entries: list[tuple[str, dict[str, Any]]], day: date) -> list[tuple[str, dict]]:
    """The day's prediction files (by name and instant), then the labels files of those."""
    from batchserving.monitoring.days import FILE_NAME, file_instant, window

    start, end = window(day)
    files, stems = [], set()
    for folder, entry in entries:
        name = posixpath.basename(entry["name"])
        match = FILE_NAME.match(name)
        if match and start <= file_instant(match) < end:
            files.append((folder, entry))
            stems.add(name.rsplit(".", 1)[0])
    labels = [
        (folder, entry)
        for folder, entry in entries
        if (name := posixpath.basename(entry["name"])).endswith(LABELS_SUFFIX)
        and name[: -len(LABELS_SUFFIX)] in stems
    ]
    return files + labels


def fetch_one(fs: Any, entry: dict[str, Any], target: Path, found: Fetched) -> None:
    """Get one shared file unless the same size is here already, or it is too large."""
    size = int(entry.get("size") or 0)
    if size > MAX_FILE_BYTES:
        reason = f"{size} bytes on the remote, more than {MAX_FILE_BYTES}: not fetched"
        found.skipped.append({"file": str(target), "reason": reason})
        return
    if target.is_file() and not target.is_symlink() and target.stat().st_size == size:
        found.present.append(str(target))
        return
    with atomic_path(target) as tmp:
        fs.get_file(entry["name"], str(tmp))
        if tmp.stat().st_size > MAX_FILE_BYTES:  # the remote's listing may have been stale
            raise ValueError(f"{target}: more than {MAX_FILE_BYTES} bytes")
    found.fetched.append(str(target))


def fetch_served_day(repo: Path, predictions_dir: Path, day: date, max_files: int) -> Fetched:
    """Every worker's prediction files of KST ``day`` from the remote into ``predictions_dir``."""
    from batchserving.monitoring.days import DayError

    found = Fetched()
    try:
        if (shared := shared_root(repo)) is None:
            return found
        fs, root = shared
        chosen = chosen_entries(day_entries(fs, root, day), day)
        count = sum(not posixpath.basename(e["name"]).endswith(LABELS_SUFFIX) for _, e in chosen)
        if count > max_files:
            raise DayError(
                f"{day} has more than {max_files} shared prediction files on the DVC remote "
                f"{remote_description(repo)}: raise monitoring.max_files in params.yaml"
            )
        for folder, entry in chosen:
            fetch_one(
                fs, entry, predictions_dir / folder / posixpath.basename(entry["name"]), found
            )
    except DayError:
        raise
    except Exception as exc:  # the remote's own errors differ by kind (OSError, botocore, DVC)
        raise remote_error(repo, f"get {day}'s shared predictions from", exc) from None
    return found
