"""Data versions on refs of their own: a data pipeline's lock file, committed to ``data/<name>``.

``main`` is for people and model versions (GTO tags commits there). A data pipeline that a
schedule runs every hour (``weather``, and any other pipeline but ``model``) records its
versions on the branch ``data/<name>`` instead, so the hourly bot commits never reject a
person's push to ``main`` nor force every writer to re-sync.

A data version is a commit on ``data/<name>`` whose tree is the server branch's tree at
the run (the code that made the data) plus the pipeline's lock file ``<dir>/dvc.lock``
and any git-tracked output it pins, and the ``.dvc`` files of the partitions the pipeline
sealed so far (``<dir>/sealed/``: carried from the previous version, plus the working
tree's new ones; ``batchserving.weather.seal``). Its first parent is the previous data version (so
``git log --first-parent data/weather`` lists the versions), its second the ``main``
commit it ran on. It is written with a private index (``git commit-tree`` and
``git update-ref``): the workspace's branch, index and working tree never move. On
``main`` the lock file is not tracked; a run puts the data tip's lock into the working
tree first (``restore_lock``), so DVC pulls and reruns exactly what that version pins.
Nothing here names a pipeline: the name and the lock file are all it needs.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from batchserving.core.atomic import write_text
from batchserving.core.names import PARAMS_FILE
from batchserving.core.params import RegistryParams
from batchserving.registry.git import git, run_tool, show

# The pipeline whose versions are commits on main (tagged by GTO); every other is data.
MODEL_PIPELINE = "model"
DATA_PREFIX = "data/"
SEALED = "sealed"  # <dir>/sealed/**.dvc: partitions a pipeline sealed (batchserving.weather.seal)


@dataclass(frozen=True)
class DataPipeline:
    """A data pipeline by name and lock file (``weather``, ``weather/dvc.lock``)."""

    name: str
    lock: str

    @classmethod
    def of(cls, name: str, pipeline_file: str) -> DataPipeline:
        """The data pipeline ``name`` whose stages are in ``pipeline_file`` (its dvc.yaml)."""
        return cls(name, str(PurePosixPath(pipeline_file).with_name("dvc.lock")))

    @property
    def branch(self) -> str:
        return f"{DATA_PREFIX}{self.name}"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def sealed(self) -> str:
        """The folder of the ``.dvc`` files of its sealed partitions (``weather/sealed``)."""
        return str(PurePosixPath(self.lock).parent / SEALED)


def tip(repo: Path, data: DataPipeline) -> str | None:
    """The local data branch's commit, or None when it has none yet."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{data.ref}^{{commit}}", check=False)
    return out.strip() or None


def set_tip(repo: Path, data: DataPipeline, commit: str | None) -> None:
    """Point the local data branch at ``commit`` (the server's), or delete it (None)."""
    if commit is None:
        git(repo, "update-ref", "-d", data.ref, check=False)
    else:
        git(repo, "update-ref", data.ref, commit)


def restore_lock(repo: Path, data: DataPipeline) -> None:
    """Put the data tip's lock file, and the git-tracked outputs it pins, into the working
    tree (none yet: leave what is there).

    Those outputs (``cache: false`` metrics and plot data, such as the monitoring
    pipeline's history of days) live only in git: a fresh workspace must start from the
    version's copy, or its run would publish a history that starts again.
    """
    commit = tip(repo, data)
    text = show(repo, commit, data.lock) if commit else None
    if text is None:
        return
    write_text(repo / data.lock, text)
    for path in tracked_blobs(repo, commit, sorted(out_paths(text))):
        write_text(repo / path, show(repo, commit, path) or "")


def tracked_blobs(repo: Path, commit: str, paths: list[str]) -> list[str]:
    """Those of ``paths`` that are files in ``commit`` (a DVC-cached directory is not)."""
    if not paths:
        return []
    listing = git(repo, "ls-tree", "-z", commit, "--", *paths)
    entries = (line.split("\t", 1) for line in listing.split("\0") if line)
    return [name for meta, name in entries if meta.split()[1] == "blob"]


def out_paths(lock_text: str) -> set[str]:
    """Every output path a lock file pins (only the git-tracked ones are committed)."""
    stages = (yaml.safe_load(lock_text or "") or {}).get("stages", {})
    return {o["path"] for s in stages.values() for o in s.get("outs", []) if "path" in o}


def tracked_outputs(repo: Path, lock_text: str) -> list[str]:
    """Outputs of the lock that exist and git does not ignore (``cache: false`` files)."""
    candidates = sorted(p for p in out_paths(lock_text) if (repo / p).is_file())
    if not candidates:
        return []
    ignored = run_tool(["git", "check-ignore", "--", *candidates], repo, check=False).stdout
    return [p for p in candidates if p not in set(ignored.split())]


def changed(repo: Path, commit: str | None, files: list[str]) -> bool:
    """Whether any of ``files`` differs from its content at ``commit`` (no commit: True)."""
    if commit is None:
        return True
    return any(
        show(repo, commit, name) != (repo / name).read_text(encoding="utf-8") for name in files
    )


def sealed_tree(repo: Path, commit: str | None, data: DataPipeline) -> str | None:
    """The tree of the sealed partitions' ``.dvc`` files at ``commit`` (None: none)."""
    if commit is None:
        return None
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{commit}:{data.sealed}", check=False)
    return out.strip() or None


def new_sealed(repo: Path, previous: str | None, data: DataPipeline) -> list[str]:
    """The sealed ``.dvc`` files of the working tree that ``previous`` lacks or differ there.

    One ``git ls-tree`` and one ``git hash-object`` however many partitions are sealed.
    """
    folder = repo / data.sealed
    found = folder.rglob("*.dvc") if folder.is_dir() else []
    local = sorted(str(p.relative_to(repo)) for p in found)
    if not local:
        return []
    blobs = git(repo, "hash-object", "--", *local).split()
    tree = sealed_tree(repo, previous, data)
    known = {}
    if tree:
        for line in git(repo, "ls-tree", "-r", tree).splitlines():
            meta, path = line.split("\t", 1)
            known[f"{data.sealed}/{path}"] = meta.split()[2]
    return [path for path, blob in zip(local, blobs, strict=True) if known.get(path) != blob]


def tree_with(
    repo: Path, base: str, files: list[str], sealed: tuple[str, str | None] = ("", None)
) -> str:
    """The tree of ``base`` with ``files`` replaced by their working-tree content.

    ``sealed`` (a folder and a tree) becomes the data pipeline's sealed folder first, so
    every version carries every partition sealed so far; ``files`` may add to it.
    """
    git_dir = git(repo, "rev-parse", "--absolute-git-dir").strip()
    fd, index = tempfile.mkstemp(prefix="data-index-", dir=git_dir)
    os.close(fd)
    env = {"GIT_INDEX_FILE": index}
    try:
        git(repo, "read-tree", base, env=env)
        folder, tree = sealed
        if tree is not None:
            git(repo, "read-tree", f"--prefix={folder}/", tree, env=env)
        blobs = git(repo, "hash-object", "-w", "--", *files).split()
        pairs = zip(blobs, files, strict=True)
        infos = [arg for b, n in pairs for arg in ("--cacheinfo", f"100644,{b},{n}")]
        git(repo, "update-index", "--add", *infos, env=env)
        return git(repo, "write-tree", env=env).strip()
    finally:
        Path(index).unlink(missing_ok=True)


def record_version(repo: Path, data: DataPipeline, label: str) -> str | None:
    """Commit the working tree's lock file (and tracked outputs) to the data branch.

    Return the new data version's commit, or None when it equals the data tip's.
    """
    lock_text = (repo / data.lock).read_text(encoding="utf-8")
    files = [data.lock, *tracked_outputs(repo, lock_text)]
    previous = tip(repo, data)
    sealed = new_sealed(repo, previous, data)
    if not sealed and not changed(repo, previous, files):
        print(f"registry: {data.branch} unchanged; nothing to commit", flush=True)
        return None
    files += sealed
    head = git(repo, "rev-parse", "HEAD").strip()
    tree = tree_with(repo, head, files, (data.sealed, sealed_tree(repo, previous, data)))
    parents = [*(["-p", previous] if previous else []), "-p", head]
    identity = RegistryParams.load(repo / PARAMS_FILE).git_env()
    shown = files if len(files) <= 6 else [*files[:5], f"and {len(files) - 5} more"]
    message = f"{label}: {data.name} data version\n\nChanged: {', '.join(shown)}\n"
    commit = git(repo, "commit-tree", tree, *parents, "-m", message, env=identity).strip()
    git(repo, "update-ref", data.ref, commit, previous or "0" * 40)
    print(f"registry: committed {commit[:12]} on {data.branch}", flush=True)
    return commit
