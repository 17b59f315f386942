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

3. splits the data tip's outputs into partitions (a pipeline that keeps any: the weather
   store's single raw directory and its history): the data is pulled once, every past day
   is sealed into ``.dvc`` files of its own (``batchserving.weather.seal``) and recorded
   as one more data version;

then ``dvc push`` and one atomic git push of ``main`` and the data branches. No commit,
tag or DVC object is rewritten or deleted: every model version and every data version
recorded so far stays where it was (the old single-directory versions included), and
the newest version holds every issuance, open or sealed. Run again, it finds nothing
to move or split and changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchserving.core.names import PARAMS_FILE
from batchserving.core.params import ParamsError, RegistryParams
from batchserving.core.results import emit
from batchserving.registry.dataref import DataPipeline, record_version, restore_lock, tip
from batchserving.registry.git import RegistryError, check_result, git, run_label, run_tool
from batchserving.registry.lock import locked_workspace
from batchserving.registry.publish import (
    PIPELINES,
    SEALING_STAGE,
    data_pipeline,
    seal_partitions,
)
from batchserving.registry.remote import dvc_push
from batchserving.registry.sync import ORIGIN, dvc_pull, server_heads, sync, sync_data_tip
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


def split_partitions(repo: Path, data: DataPipeline, label: str, tip_synced: bool) -> bool:
    """Seal the data tip's past partitions and record them as a data version; True if any.

    ``tip_synced``: the local data branch is already the one to build on (just moved).
    """
    if not tip_synced and origin_url() is not None:
        sync_data_tip(repo, data, server_heads(repo, data)[1])
    if tip(repo, data) is None:
        return False
    restore_lock(repo, data)
    dvc_pull(repo, [PIPELINES[data.name]])
    if not seal_partitions(repo, data.name, [SEALING_STAGE]):
        return False
    record_version(repo, data, f"{label}: past partitions sealed")
    print(f"migrate: {data.branch}'s outputs split into sealed partitions", flush=True)
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


def migrate(repo: Path) -> dict[str, list[str]]:
    """Sync, move data versions off main, split old outputs, push; name the branches changed."""
    sync(repo, [])
    label = run_label()
    moved, split = [], []
    for data in data_pipelines():
        if move_off_main(repo, data, label):
            moved.append(data)
        if split_partitions(repo, data, label, tip_synced=data in moved):
            split.append(data)
    if split:
        dvc_push(repo)
    if moved or split:
        push(repo, [*moved, *(d for d in split if d not in moved)])
    return {"moved": [d.branch for d in moved], "split": [d.branch for d in split]}


def main() -> None:
    try:
        with locked_workspace() as repo:
            changed = migrate(repo)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"migrate: {exc}; nothing was pushed")
    if not any(changed.values()):
        print("migrate: no data version on main and no output to split; nothing changed")
    emit(changed)


if __name__ == "__main__":
    main()
