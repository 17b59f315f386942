"""Bring pipeline stages up to date and publish the result: the repo-writing task command.

    python -m batchserving.registry.publish evaluate                 # prepare, train, evaluate
    python -m batchserving.registry.publish --pipeline weather --single-item fetch_weather

Sync, work, publish (``batchserving.registry.sync``): start from the server's state with
the stages' outputs pulled from the DVC remote (so an unchanged pipeline is not rerun),
``dvc repro`` (a failed stage leaves the workspace as ``dvc.lock`` pins it), commit what
the pipeline changed with a message naming the run, then ``dvc push`` and ``git push``.
The result (the last line, the task's XCom) names the commit the workspace ends on, which
the register step of ``simple_train`` and ``model_selection`` tags.
"""

from __future__ import annotations

import argparse
import sys

from batchserving.core.lock import reap_children_on_sigterm
from batchserving.core.names import PIPELINE, WEATHER_PIPELINE
from batchserving.core.params import ParamsError
from batchserving.core.repro import repro_or_restore
from batchserving.core.results import emit
from batchserving.registry.git import RegistryError, git, run_label
from batchserving.registry.register import commit_pipeline_state
from batchserving.registry.sync import synced
from batchserving.registry.workspace import workspace_path

# The pipelines by name: the DAGs name them, so a DAG parse never imports the paths.
PIPELINES = {"model": PIPELINE, "weather": WEATHER_PIPELINE}


class StageFailed(RegistryError):
    """``dvc repro`` failed; its own output says why."""


def stage_targets(pipeline: str, stages: list[str]) -> list[str]:
    """DVC's addresses of ``stages`` of the named pipeline (the root's need no file)."""
    path = PIPELINES[pipeline]
    return stages if path == PIPELINE else [f"{path}:{stage}" for stage in stages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pipeline", choices=sorted(PIPELINES), default="model", help="whose stages these are"
    )
    parser.add_argument("--single-item", action="store_true", help="only the named stages")
    parser.add_argument("stages", nargs="+")
    args = parser.parse_args()
    reap_children_on_sigterm()
    repo = workspace_path()
    targets = stage_targets(args.pipeline, args.stages)
    pull = ["--with-deps", *targets]  # a fresh workspace needs the inputs too

    def step() -> str:
        code = repro_or_restore(targets, single_item=args.single_item)
        if code != 0:
            raise StageFailed(f"`dvc repro {' '.join(targets)}` failed (exit {code})")
        commit_pipeline_state(repo, run_label())
        return git(repo, "rev-parse", "HEAD").strip()

    try:
        commit = synced(step, pull, repo)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"publish: {exc}; nothing was published")
    print(f"publish: {' '.join(targets)} published at {commit[:12]}", flush=True)
    emit({"commit": commit, "pipeline": args.pipeline, "stages": args.stages})


if __name__ == "__main__":
    main()
