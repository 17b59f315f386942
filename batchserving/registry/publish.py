"""Bring pipeline stages up to date and publish the result: the repo-writing task command.

    python -m batchserving.registry.publish evaluate                 # prepare, train, evaluate
    python -m batchserving.registry.publish --pipeline weather --single-item fetch_weather

Under the repo lock (``batchserving.registry.lock``), sync, work, publish
(``batchserving.registry.sync``): start from the server's state with the stages' outputs
pulled from the DVC remote (so an unchanged pipeline is not rerun), ``dvc repro``, commit
what the pipeline changed with a message naming the run, then ``dvc push`` and ``git
push``. The result (the last line, the task's XCom) names the commit the workspace ends
on, which the register step of ``simple_train`` and ``model_selection`` tags.

``dvc repro`` deletes a stage's outputs before it runs the stage, so a stage that fails
(a bad value in params.yaml, say) would leave the workspace without its model. On
failure ``repro_or_restore`` restores, with ``dvc checkout``, every output that
``dvc.lock`` still pins (dvc.lock is only rewritten for stages that succeeded). DVC reads
params.yaml itself before any stage runs, and expands a YAML alias bomb in it for
minutes: the file's size and structure are checked first (``read_params``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batchserving.core.names import MONITORING_PIPELINE, PARAMS_FILE, PIPELINE, WEATHER_PIPELINE
from batchserving.core.params import ParamsError, read_params
from batchserving.core.results import emit
from batchserving.registry.git import RegistryError, git, run_label, run_tool
from batchserving.registry.lock import locked_workspace
from batchserving.registry.register import commit_pipeline_state
from batchserving.registry.sync import synced

# The pipelines by name: the DAGs name them, so a DAG parse never imports the paths.
PIPELINES = {"model": PIPELINE, "weather": WEATHER_PIPELINE, "monitoring": MONITORING_PIPELINE}


class StageFailed(RegistryError):
    """``dvc repro`` failed; its own output says why."""


def stage_targets(pipeline: str, stages: list[str]) -> list[str]:
    """DVC's addresses of ``stages`` of the named pipeline (the root's need no file)."""
    path = PIPELINES[pipeline]
    return stages if path == PIPELINE else [f"{path}:{stage}" for stage in stages]


def repro_or_restore(repo: Path, targets: list[str], single_item: bool = False) -> int:
    """``dvc repro TARGETS``; on failure restore them and their deps; return repro's exit code.

    ``single_item`` runs only the targets, not the stages they depend on. DVC's output
    goes to this command's (the task log). Raise ParamsError, before DVC runs, when
    params.yaml is too large or too deep.
    """
    read_params(repo / PARAMS_FILE)
    flags = ["--single-item"] if single_item else []
    repro = ["dvc", "repro", *flags, *targets]
    code = run_tool(repro, repo, check=False, capture=False).returncode
    if code != 0:
        print(
            f"repro: `dvc repro {' '.join(targets)}` failed (exit {code}); restoring the "
            "outputs dvc.lock pins with `dvc checkout`",
            file=sys.stderr,
            flush=True,
        )
        restore = ["dvc", "checkout", "--quiet", "--with-deps", *targets]
        run_tool(restore, repo, check=False, capture=False)
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pipeline", choices=sorted(PIPELINES), default="model", help="whose stages these are"
    )
    parser.add_argument("--single-item", action="store_true", help="only the named stages")
    parser.add_argument("stages", nargs="+")
    args = parser.parse_args()
    targets = stage_targets(args.pipeline, args.stages)
    pull = ["--with-deps", *targets]  # a fresh workspace needs the inputs too

    def step(repo: Path) -> str:
        code = repro_or_restore(repo, targets, single_item=args.single_item)
        if code != 0:
            raise StageFailed(f"`dvc repro {' '.join(targets)}` failed (exit {code})")
        commit_pipeline_state(repo, run_label())
        return git(repo, "rev-parse", "HEAD").strip()

    try:
        with locked_workspace() as repo:
            commit = synced(lambda: step(repo), pull, repo)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"publish: {exc}; nothing was published")
    print(f"publish: {' '.join(targets)} published at {commit[:12]}", flush=True)
    emit({"commit": commit, "pipeline": args.pipeline, "stages": args.stages})


if __name__ == "__main__":
    main()
