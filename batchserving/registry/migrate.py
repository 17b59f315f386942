"""Move an existing model repo's data versions off ``main``: the one step, run once.

    MODEL_REPO=... [MODEL_REPO_URL=...] python -m batchserving.registry.migrate

Model repos made before data versions had refs of their own carry each data pipeline's
lock file (``weather/dvc.lock``) on ``main``, committed there by every hourly run. Under
the repo lock, synced with the server, this command, for every data pipeline whose lock
file ``main`` tracks:

1. gives ``data/<name>`` its first version: ``main``'s lock file, as it is (a data
   branch the server already has is newer and kept);
2. stops tracking the lock file on ``main`` (one commit; the file stays in the working
   tree), so no later commit on ``main`` carries a data version;

then pushes ``main`` and the data branches in one atomic push. No commit, tag or DVC
object is rewritten or deleted: every model version and every data version recorded on
``main`` so far stays where it was, and the data the lock pins is the data branch's.
Run again, it finds nothing to move and changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchserving.core.names import PARAMS_FILE
from batchserving.core.params import ParamsError, RegistryParams
from batchserving.core.results import emit
from batchserving.registry.dataref import DataPipeline, record_version, tip
from batchserving.registry.git import RegistryError, check_result, git, run_label, run_tool
from batchserving.registry.lock import locked_workspace
from batchserving.registry.publish import PIPELINES, data_pipeline
from batchserving.registry.sync import ORIGIN, server_heads, sync, sync_data_tip
from batchserving.registry.workspace import origin_url


def data_pipelines() -> list[DataPipeline]:
    """Every data pipeline publish knows (all but the model's)."""
    return [d for d in (data_pipeline(name) for name in sorted(PIPELINES)) if d is not None]


def tracked_on_head(repo: Path, path: str) -> bool:
    return bool(git(repo, "ls-files", "--", path).strip())


def move_off_main(repo: Path, data: DataPipeline, label: str) -> bool:
    """Record ``main``'s lock file on the data branch (unless it has one); untrack it."""
    if not tracked_on_head(repo, data.lock):
        return False
    if origin_url() is not None:
        sync_data_tip(repo, data, server_heads(repo, data)[1])
    if tip(repo, data) is None:
        git(repo, "checkout", "--quiet", "HEAD", "--", data.lock)  # main's, as committed
        record_version(repo, data, f"{label}: {data.lock} moved off main")
    git(repo, "rm", "--quiet", "--cached", "--", data.lock)
    message = (
        f"{label}: {data.name} data versions move to {data.branch}\n\n"
        f"{data.lock} is no longer tracked on main; its versions are commits on "
        f"{data.branch} (docs/architecture.md).\n"
    )
    identity = RegistryParams.load(repo / PARAMS_FILE).git_env()
    git(repo, "commit", "--no-verify", "--quiet", "-m", message, env=identity)
    print(f"migrate: {data.lock} moved to {data.branch} ({tip(repo, data)[:12]})", flush=True)
    return True


def push(repo: Path, moved: list[DataPipeline]) -> None:
    """One atomic push of the server's branch and the data branches (nothing forced)."""
    if origin_url() is None:
        return
    branch = git(repo, "symbolic-ref", "--short", "HEAD").strip()
    refs = [f"HEAD:refs/heads/{branch}", *(f"{d.ref}:{d.ref}" for d in moved)]
    result = run_tool(["git", "push", "--atomic", "--porcelain", ORIGIN, *refs], repo, check=False)
    check_result(
        result,
        f"git push to {ORIGIN}",
        advice="someone may have pushed meanwhile: run the migration again",
    )


def migrate(repo: Path) -> list[str]:
    """Sync, move every data pipeline's lock file off main, push; return the branches made."""
    sync(repo, [])
    label = run_label()
    moved = [d for d in data_pipelines() if move_off_main(repo, d, label)]
    if moved:
        push(repo, moved)
    return [d.branch for d in moved]


def main() -> None:
    try:
        with locked_workspace() as repo:
            moved = migrate(repo)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"migrate: {exc}; nothing was pushed")
    if not moved:
        print("migrate: no data pipeline's lock file is tracked on main; nothing to move")
    emit({"moved": moved})


if __name__ == "__main__":
    main()
