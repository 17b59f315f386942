"""Bring pipeline stages up to date and publish the result: the repo-writing task command.

    python -m batchserving.registry.publish evaluate                 # prepare, train, evaluate
    python -m batchserving.registry.publish --pipeline weather --single-item fetch_weather

Under the repo lock (``batchserving.registry.lock``), sync, work, publish
(``batchserving.registry.sync``): start from the server's state with the stages' outputs
pulled from the DVC remote (so an unchanged pipeline is not rerun), ``dvc repro``, commit
what the pipeline changed with a message naming the run, then ``dvc push`` and ``git
push``. The result (the last line, the task's XCom) names the commit the workspace ends
on, which the register step of ``simple_train`` and ``model_selection`` tags.

The model pipeline (``--pipeline model``, the default) commits to the server's branch
(``main``). Every other pipeline is a data pipeline: its versions are commits on the
branch ``data/<name>`` (``batchserving.registry.dataref``), keyed by the pipeline's name
and its lock file ``<dir>/dvc.lock`` alone, so a new data pipeline needs only its entry
in PIPELINES. Its result names that data version's commit and branch.

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
from batchserving.registry.dataref import MODEL_PIPELINE, DataPipeline, record_version, tip
from batchserving.registry.git import RegistryError, git, last_lines, run_label, run_tool
from batchserving.registry.lock import locked_workspace
from batchserving.registry.register import commit_pipeline_state
from batchserving.registry.sync import synced
from batchserving.weather.seal import seal

# The pipelines by name: the DAGs name them, so a DAG parse never imports the paths.
PIPELINES = {
    MODEL_PIPELINE: PIPELINE,
    "weather": WEATHER_PIPELINE,
    "monitoring": MONITORING_PIPELINE,
}
SEALING_STAGE = "preprocess_weather"  # the weather step after which past days are sealed


class StageFailed(RegistryError):
    """``dvc repro`` failed; its own output says why."""


def data_pipeline(pipeline: str) -> DataPipeline | None:
    """The named pipeline as a data pipeline (its branch and lock file); None for the model."""
    return None if pipeline == MODEL_PIPELINE else DataPipeline.of(pipeline, PIPELINES[pipeline])


def stage_targets(pipeline: str, stages: list[str]) -> list[str]:
    """DVC's addresses of ``stages`` of the named pipeline (the root's need no file).

    A stage named with its file (``weather/dvc.yaml:fetch_weather``) is refused: its
    versions would go where the pipeline named by ``--pipeline`` records them.
    """
    addressed = [stage for stage in stages if ":" in stage or "/" in stage]
    if addressed:
        raise RegistryError(
            f"name stages without their dvc.yaml ({addressed[0][:80]!r}) and the pipeline with "
            f"--pipeline ({', '.join(sorted(PIPELINES))})"
        )
    path = PIPELINES[pipeline]
    return stages if path == PIPELINE else [f"{path}:{stage}" for stage in stages]


def repro_or_restore(repo: Path, targets: list[str], single_item: bool = False) -> tuple[int, str]:
    """``dvc repro TARGETS``; on failure restore them and their deps. Return repro's exit
    code and, on failure, why: the last lines it wrote (the stage's own reason, then DVC's).

    ``single_item`` runs only the targets, not the stages they depend on. DVC's output
    goes to this command's (the task log). Raise ParamsError, before DVC runs, when
    params.yaml is too large or too deep.
    """
    read_params(repo / PARAMS_FILE)
    flags = ["--single-item"] if single_item else []
    repro = run_tool(["dvc", "repro", *flags, *targets], repo, check=False, capture=False)
    code = repro.returncode
    if code == 0:
        return 0, ""
    print(
        f"repro: `dvc repro {' '.join(targets)}` failed (exit {code}); restoring the "
        "outputs dvc.lock pins with `dvc checkout`",
        file=sys.stderr,
        flush=True,
    )
    restore = ["dvc", "checkout", "--quiet", "--with-deps", *targets]
    run_tool(restore, repo, check=False, capture=False)
    return code, last_lines(repro.stderr, 2) or "(no output)"


def seal_partitions(repo: Path, pipeline: str, stages: list[str]) -> list[str]:
    """Seal the pipeline's past partitions, if it keeps any; return the .dvc files written.

    The weather store's days older than its open window get ``.dvc`` files of their own
    (``batchserving.weather.seal``), so the next run pulls and pushes one partition. Only
    after ``preprocess_weather``: its state says what is processed, and only the step that
    pulled and ran it has that state as the version it publishes.
    """
    return seal(repo) if pipeline == "weather" and SEALING_STAGE in stages else []


def record(repo: Path, data: DataPipeline | None) -> str:
    """Commit the run's state where its pipeline keeps versions; return the commit it ends on."""
    if data is None:
        commit_pipeline_state(repo, run_label())
        return git(repo, "rev-parse", "HEAD").strip()
    record_version(repo, data, run_label())
    commit = tip(repo, data)
    if commit is None:  # no version before, and none made: nothing the lock pins exists
        raise RegistryError(f"{data.lock} was not written; nothing to record on {data.branch}")
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pipeline", choices=sorted(PIPELINES), default="model", help="whose stages these are"
    )
    parser.add_argument("--single-item", action="store_true", help="only the named stages")
    parser.add_argument("stages", nargs="+")
    args = parser.parse_args()
    data = data_pipeline(args.pipeline)

    def step(repo: Path) -> str:
        code, reason = repro_or_restore(repo, targets, single_item=args.single_item)
        if code != 0:
            raise StageFailed(f"`dvc repro {' '.join(targets)}` failed (exit {code}): {reason}")
        seal_partitions(repo, args.pipeline, args.stages)
        return record(repo, data)

    try:
        targets = stage_targets(args.pipeline, args.stages)
        pull = ["--with-deps", *targets]  # a fresh workspace needs the inputs too
        with locked_workspace() as repo:
            commit = synced(lambda: step(repo), pull, repo, data)
    except (ParamsError, RegistryError) as exc:
        sys.exit(f"publish: {exc}; nothing was published")
    where = f" on {data.branch}" if data else ""
    print(f"publish: {' '.join(targets)} published at {commit[:12]}{where}", flush=True)
    result = {"commit": commit, "pipeline": args.pipeline, "stages": args.stages}
    emit(result | ({"ref": data.branch} if data else {}))


if __name__ == "__main__":
    main()
