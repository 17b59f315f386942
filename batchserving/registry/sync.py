"""Sync, work, publish: how a task that writes the registry shares it with every worker.

A workspace is a cache: the git server (``MODEL_REPO_URL``) and the DVC remote are the
registry. A writing step starts from the server's state (fetch, tags included, and a
tag that differs from the server's is the server's; reset to the server's branch; pull
the DVC outputs it needs) and ends by publishing (``dvc push``, then one
``git push --atomic`` of the branch and the tags it created). A rejected push means
someone published first: re-sync and redo the step, a few times at most, then fail
clearly. Never a force-push, never a dropped commit. Version numbers and prod counters
are computed by the step after the sync, so two workers never mint the same one.

A data pipeline's step (``batchserving.registry.dataref``) syncs the same way, then takes
the server's ``data/<name>`` tip (only that commit: ``--depth 1``, so its cost does not grow
with the data's history) and its lock file; it publishes that branch alone, never ``main``.
A fresh workspace fetches only the server's branch and its tags, never the data branches.

With no ``MODEL_REPO_URL`` (one machine) the workspace is the registry: there is
nothing to sync beyond the local data tip's lock file, and publishing is the
``dvc push`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from batchserving.registry.dataref import DataPipeline, restore_lock, set_tip, tip
from batchserving.registry.git import RegistryError, check_result, git, last_lines, run_tool
from batchserving.registry.remote import dvc_push
from batchserving.registry.workspace import origin_url

ORIGIN = "origin"
MAX_ATTEMPTS = 3
# What git push says of a ref the server refused because someone published first.
REJECTED = ("[rejected]", "non-fast-forward", "already exists")
T = TypeVar("T")


class PushRejected(RegistryError):
    """The server refused the push: someone published first."""


def server_heads(repo: Path, data: DataPipeline | None = None) -> tuple[str, str | None]:
    """The branch the server's HEAD names (``main`` here), and the data branch's commit.

    One round trip (``git ls-remote``); the data commit is None when there is no data
    pipeline or the server has no such branch yet.
    """
    out = git(repo, "ls-remote", "--symref", ORIGIN, "HEAD", *([data.ref] if data else []))
    branch, data_commit = None, None
    for line in out.splitlines():
        fields = line.split()
        if line.startswith("ref: refs/heads/") and len(fields) >= 2:
            branch = fields[1].removeprefix("refs/heads/")
        elif data and len(fields) == 2 and fields[1] == data.ref:
            data_commit = fields[0]
    if branch is None:
        raise RegistryError(
            f"the git server ({ORIGIN}) has no HEAD branch; push a branch to it first"
        )
    return branch, data_commit


def server_branch(repo: Path) -> str:
    """The branch the server's HEAD names (``main`` for this project's model repo)."""
    return server_heads(repo)[0]


def dvc_pull(repo: Path, targets: list[str]) -> None:
    """Pull the outputs of ``targets`` that the remote has (missing ones are rebuilt later)."""
    run_tool(["dvc", "pull", "--allow-missing", *targets], repo)


def sync_data_tip(repo: Path, data: DataPipeline, commit: str | None) -> None:
    """Make the local data branch the server's ``commit`` (fetched alone if missing)."""
    if commit is not None:
        have = run_tool(["git", "cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False)
        if have.returncode != 0:
            refspec = f"+{data.ref}:refs/remotes/{ORIGIN}/{data.branch}"
            git(repo, "fetch", "--quiet", "--depth=1", ORIGIN, refspec)
    set_tip(repo, data, commit)


def sync(repo: Path, pull: list[str], data: DataPipeline | None = None) -> None:
    """Make the workspace the server's state: its branch, its tags, the outputs ``pull`` needs.

    For a data pipeline also the server's data tip, whose lock file goes into the working
    tree before the pull.
    """
    if origin_url() is None:
        if data:
            restore_lock(repo, data)
        return
    git(repo, "remote", "set-url", ORIGIN, origin_url())
    branch, data_commit = server_heads(repo, data)
    # Only the server's branch (the data branches are fetched one tip at a time);
    # --prune-tags drops local tags the server lacks (left by a publish that failed);
    # --force takes the server's tag where one differs.
    refspec = f"+refs/heads/{branch}:refs/remotes/{ORIGIN}/{branch}"
    git(repo, "fetch", "--quiet", "--prune", "--prune-tags", "--force", "--tags", ORIGIN, refspec)
    git(repo, "pack-refs", "--all")  # one file of tags: registry lookups stay flat
    git(repo, "checkout", "--quiet", "-B", branch, f"{ORIGIN}/{branch}")
    git(repo, "reset", "--quiet", "--hard", f"{ORIGIN}/{branch}")
    git(repo, "clean", "--quiet", "-d", "--force")  # untracked, not ignored: outputs stay
    if data:
        sync_data_tip(repo, data, data_commit)
        restore_lock(repo, data)
    if pull:
        dvc_pull(repo, pull)
    at = f"{ORIGIN}/{branch} {git(repo, 'rev-parse', 'HEAD')[:12]}"
    if data:
        at += f", {data.branch} {(tip(repo, data) or 'none yet')[:12]}"
    print(f"sync: workspace at {at}", flush=True)


def local_tags(repo: Path) -> set[str]:
    return set(git(repo, "tag", "--list").split())


def publish(repo: Path, new_tags: set[str], data: DataPipeline | None = None) -> None:
    """``dvc push``, then push the branch (a data pipeline's: its data branch) and ``new_tags``.

    One atomic git push. A data pipeline's step never pushes the server's branch.
    """
    dvc_push(repo)
    if origin_url() is None:
        return
    if data:
        if tip(repo, data) is None:
            return  # no data version yet (the step made none)
        heads = [f"{data.ref}:{data.ref}"]
        pushed = data.branch
    else:
        pushed = git(repo, "symbolic-ref", "--short", "HEAD").strip()  # sync checked it out
        heads = [f"HEAD:refs/heads/{pushed}"]
    refs = [*heads, *(f"refs/tags/{t}" for t in sorted(new_tags))]
    result = run_tool(["git", "push", "--atomic", "--porcelain", ORIGIN, *refs], repo, check=False)
    output = f"{result.stdout}\n{result.stderr}"
    if result.returncode != 0 and any(marker in output for marker in REJECTED):
        raise PushRejected(f"the server refused the push ({last_lines(output)})")
    check_result(result, f"git push to {ORIGIN}")
    print(f"publish: pushed {pushed}{' and ' + ', '.join(sorted(new_tags)) if new_tags else ''}")


def synced(
    step: Callable[[], T], pull: list[str], repo: Path, data: DataPipeline | None = None
) -> T:
    """Sync, run ``step``, publish; on a rejected push re-sync and redo, bounded."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sync(repo, pull, data)
        before = local_tags(repo)
        result = step()
        try:
            publish(repo, local_tags(repo) - before, data)
        except PushRejected as exc:
            print(f"publish: {exc}; someone published first, re-syncing ({attempt})", flush=True)
            continue
        return result
    raise RegistryError(
        f"the server rejected this step's push {MAX_ATTEMPTS} times (others keep publishing "
        "first); nothing of it was published. Run the task again"
    )
