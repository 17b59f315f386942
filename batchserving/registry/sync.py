"""Sync, work, publish: how a task that writes the registry shares it with every worker.

A workspace is a cache: the git server (``MODEL_REPO_URL``) and the DVC remote are the
registry. A writing step starts from the server's state (fetch, tags included, and a
tag that differs from the server's is the server's; reset to the server's branch; pull
the DVC outputs it needs) and ends by publishing (``dvc push``, then one
``git push --atomic`` of the branch and the tags it created). A rejected push means
someone published first: re-sync and redo the step, a few times at most, then fail
clearly. Never a force-push, never a dropped commit. Version numbers and prod counters
are computed by the step after the sync, so two workers never mint the same one.

With no ``MODEL_REPO_URL`` (one machine) the workspace is the registry: there is
nothing to sync, and publishing is the ``dvc push`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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


def server_branch(repo: Path) -> str:
    """The branch the server's HEAD names (``main`` for this project's model repo)."""
    out = git(repo, "ls-remote", "--symref", ORIGIN, "HEAD")
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/"):
            return line.split()[1].removeprefix("refs/heads/")
    raise RegistryError(f"the git server ({ORIGIN}) has no HEAD branch; push a branch to it first")


def dvc_pull(repo: Path, targets: list[str]) -> None:
    """Pull the outputs of ``targets`` that the remote has (missing ones are rebuilt later)."""
    run_tool(["dvc", "pull", "--allow-missing", *targets], repo)


def sync(repo: Path, pull: list[str]) -> None:
    """Make the workspace the server's state: its branch, its tags, the outputs ``pull`` needs."""
    if origin_url() is None:
        return
    git(repo, "remote", "set-url", ORIGIN, origin_url())
    branch = server_branch(repo)
    # --prune-tags drops local tags the server lacks (left by a publish that failed);
    # --force takes the server's tag where one differs.
    git(repo, "fetch", "--quiet", "--prune", "--prune-tags", "--force", "--tags", ORIGIN)
    git(repo, "pack-refs", "--all")  # one file of tags: registry lookups stay flat
    git(repo, "checkout", "--quiet", "-B", branch, f"{ORIGIN}/{branch}")
    git(repo, "reset", "--quiet", "--hard", f"{ORIGIN}/{branch}")
    git(repo, "clean", "--quiet", "-d", "--force")  # untracked, not ignored: outputs stay
    if pull:
        dvc_pull(repo, pull)
    print(f"sync: workspace at {ORIGIN}/{branch} {git(repo, 'rev-parse', 'HEAD')[:12]}", flush=True)


def local_tags(repo: Path) -> set[str]:
    return set(git(repo, "tag", "--list").split())


def publish(repo: Path, new_tags: set[str]) -> None:
    """``dvc push``, then push the branch and ``new_tags`` in one atomic git push."""
    dvc_push(repo)
    if origin_url() is None:
        return
    branch = git(repo, "symbolic-ref", "--short", "HEAD").strip()  # sync checked it out
    refs = [f"HEAD:refs/heads/{branch}", *(f"refs/tags/{t}" for t in sorted(new_tags))]
    result = run_tool(["git", "push", "--atomic", "--porcelain", ORIGIN, *refs], repo, check=False)
    output = f"{result.stdout}\n{result.stderr}"
    if result.returncode != 0 and any(marker in output for marker in REJECTED):
        raise PushRejected(f"the server refused the push ({last_lines(output)})")
    check_result(result, f"git push to {ORIGIN}")
    print(f"publish: pushed {branch}{' and ' + ', '.join(sorted(new_tags)) if new_tags else ''}")


def synced(step: Callable[[], T], pull: list[str], repo: Path) -> T:
    """Sync, run ``step``, publish; on a rejected push re-sync and redo, bounded."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        sync(repo, pull)
        before = local_tags(repo)
        result = step()
        try:
            publish(repo, local_tags(repo) - before)
        except PushRejected as exc:
            print(f"publish: {exc}; someone published first, re-syncing ({attempt})", flush=True)
            continue
        return result
    raise RegistryError(
        f"the server rejected this step's push {MAX_ATTEMPTS} times (others keep publishing "
        "first); nothing of it was published. Run the task again"
    )
