"""Champion/challenger gate of ``model_selection``: compare the latest version with ``prod``.

    python -m stages.selection compare    # writes output/selection/comparison.json

Run it under the repo lock (``python -m stages.locked python -m stages.selection compare``),
after the pipeline is up to date and registered.

Challenger: the latest registered ``iris-model`` version; its metrics are the workspace's
``metrics.json``. Champion: the version whose ``prod`` assignment tag is the newest. Both
are judged on the same test rows: when the data or the split changed since the champion
was evaluated, the champion's model is fetched (DVC cache, else remote) and re-scored on
the current test rows. The comparison JSON holds both metric sets, the deltas, the rule
and the decision; the DAG's branch decides from it alone.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages.atomic import write_json
from stages.params import ParamsError, load_section, require
from stages.registry import ARTIFACT, RegistryError, git, latest_version, model_hash, run_label
from stages.serving import SERVING_DIR, DeploymentError, read_deployment

PROD_STAGE = "prod"
COMPARISON_PATH = "output/selection/comparison.json"
METRICS_FILE = "metrics.json"
DATA_PATH = "output/data/iris.csv"
EVALUATE_STAGE = "evaluate"
# The params that decide which rows are test rows (see stages.iris.split_rows).
SPLIT_PARAMS = ("train.random_state", "train.test_size")
DEFAULT_METRIC = "f1_macro"
DEFAULT_MIN_IMPROVEMENT = 0.0

PROMOTE, KEEP, REDEPLOY = "promote", "keep", "redeploy"


class SelectionError(RuntimeError):
    """The comparison cannot be made (bad metrics, unknown versions, missing model)."""


@dataclass(frozen=True)
class SelectionParams:
    """The ``selection`` section of params.yaml, validated."""

    primary_metric: str
    min_improvement: float


def parse_selection_params(section: dict[str, Any]) -> SelectionParams:
    """Validate the ``selection`` section; absent keys take their defaults."""
    section = {
        "primary_metric": DEFAULT_METRIC,
        "min_improvement": DEFAULT_MIN_IMPROVEMENT,
        **section,
    }
    return SelectionParams(
        primary_metric=require(
            section,
            "selection",
            "primary_metric",
            str,
            "the name of a number in metrics.json, e.g. f1_macro or accuracy",
            bool,
        ),
        min_improvement=float(
            require(
                section,
                "selection",
                "min_improvement",
                (int, float),
                "a number >= 0, e.g. 0.0 or 0.01",
                lambda v: v >= 0,
            )
        ),
    )


def decide(challenger: float, champion: float | None, min_improvement: float) -> tuple[str, str]:
    """The rule: promote iff there is no champion or challenger - champion > min_improvement.

    A tie keeps the champion. Returns the decision (``promote``/``keep``) and why.
    """
    if champion is None:
        return PROMOTE, "no prod version yet (bootstrap)"
    delta = challenger - champion
    if delta > min_improvement:
        return PROMOTE, f"challenger beats champion by {delta:+.6f} > {min_improvement}"
    return KEEP, f"challenger - champion = {delta:+.6f}, not > {min_improvement}"


def parse_metrics(text: str | None, source: str, metric: str) -> dict[str, Any]:
    """The metrics in ``text`` (a metrics.json), checked to hold a finite ``metric``."""
    if text is None:
        raise SelectionError(f"{source} is missing; run `dvc repro evaluate` to write it")
    if not text.strip():
        raise SelectionError(f"{source} is empty; run `dvc repro evaluate` to rewrite it")
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SelectionError(
            f"{source} is not valid JSON ({exc}); run `dvc repro evaluate` to rewrite it"
        ) from None
    if not isinstance(metrics, dict):
        raise SelectionError(f"{source} is not a JSON object of metrics")
    if metric not in metrics:
        raise SelectionError(
            f"{source} has no '{metric}' (the primary metric, params.yaml selection."
            f"primary_metric); it has: {', '.join(sorted(metrics)) or 'nothing'}"
        )
    value = metrics[metric]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SelectionError(f"{source}: '{metric}' = {value!r} is not a finite number")
    return metrics


def metric_deltas(challenger: dict[str, Any], champion: dict[str, Any]) -> dict[str, float]:
    """challenger - champion for every top-level score both have (not counts like n_test)."""

    def is_score(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    return {
        key: round(challenger[key] - champion[key], 6)
        for key in sorted(challenger)
        if key in champion
        and not key.startswith("n_")
        and is_score(challenger[key])
        and is_score(champion[key])
    }


@dataclass(frozen=True)
class ModelVersion:
    """A registered version; ``assigned_at`` and ``tag`` describe its prod assignment."""

    version: str
    commit: str
    assigned_at: datetime | None = None
    tag: str | None = None


def _tag_counter(tag: str | None) -> int:
    match = re.search(r"#(\d+)$", tag or "")
    return int(match.group(1)) if match else 0


def prod_assignments(repo: Path) -> list[ModelVersion]:
    """Every ``prod`` assignment of the artifact, oldest first (GTO's tag history).

    Ordered by tag time, then by GTO's tag counter, so that the last one is the version
    ``dvc artifacts get --stage prod`` resolves (the newest prod tag).
    """
    from gto.api import history

    events = [
        e
        for e in history(str(repo), ARTIFACT, ascending=True)
        if e["event"] == "assignment" and e["stage"] == PROD_STAGE
    ]
    events.sort(key=lambda e: (e["timestamp"], _tag_counter(e["ref"])))
    return [
        ModelVersion(e["version"], e["commit"], _as_utc(e["timestamp"]), e["ref"]) for e in events
    ]


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def current_prod(repo: Path) -> ModelVersion | None:
    """The champion: the version of the newest prod assignment, or None (bootstrap)."""
    assignments = prod_assignments(repo)
    return assignments[-1] if assignments else None


def registered_version(repo: Path, version: str) -> ModelVersion:
    """A registered version by name (``vX.Y.Z``), or a SelectionError listing the known ones."""
    from gto.api import history

    registered = {
        e["version"]: e["commit"]
        for e in history(str(repo), ARTIFACT, ascending=True)
        if e["event"] == "registration"
    }
    if version not in registered:
        known = ", ".join(registered) or "none"
        raise SelectionError(
            f"{ARTIFACT} has no registered version {version!r}; registered: {known} "
            f"(see `gto show {ARTIFACT}`)"
        )
    return ModelVersion(version, registered[version])


def evaluation_basis(dvc_lock_text: str | None) -> dict[str, Any]:
    """What decides the test rows in a ``dvc.lock``: the data's md5 and the split params."""
    import yaml

    lock = yaml.safe_load(dvc_lock_text or "") or {}
    stage = lock.get("stages", {}).get(EVALUATE_STAGE, {})
    data_md5 = next(
        (d.get("md5") for d in stage.get("deps", []) if d.get("path") == DATA_PATH), None
    )
    params = stage.get("params", {}).get("params.yaml", {})
    return {"data_md5": data_md5, **{p: params.get(p) for p in SPLIT_PARAMS}}


def remote_description(repo: Path) -> str:
    """The default DVC remote as ``'name' (url)``, for error messages."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        name = dvc_repo.config["core"].get("remote")
        url = dvc_repo.config["remote"].get(name, {}).get("url") if name else None
    if not name:
        return "(no default remote configured)"
    # Never echo credentials a URL may carry (scheme://user:secret@host).
    return f"'{name}' ({re.sub(r'//[^/@]*@', '//', str(url))})"


def fetch_model(repo: Path, version: ModelVersion, dest: Path) -> Path:
    """Download ``version``'s model to ``dest`` from the DVC cache, else the default remote.

    The same lookup as ``dvc artifacts get . iris-model --version vX.Y.Z``.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            dvc_repo.artifacts.download(
                ARTIFACT, version=version.version, out=str(dest), force=True
            )
    except (DvcException, FileNotFoundError) as exc:
        lock = git(repo, "show", f"{version.commit}:dvc.lock", check=False)
        raise SelectionError(
            f"the model of {ARTIFACT}@{version.version} (md5 {model_hash(lock)}) is in neither "
            f"the DVC cache nor the remote {remote_description(repo)}: {exc}. Push it from a "
            "machine that has it (`dvc push`), or choose another version"
        ) from None
    return dest


def rescore(repo: Path, version: ModelVersion) -> dict[str, Any]:
    """Score ``version``'s model on the workspace's current test rows."""
    import joblib

    from stages.evaluate import score_model
    from stages.iris import load_dataset, split_rows
    from stages.train import parse_train_params

    params = parse_train_params(load_section("train", repo / "params.yaml"))
    _, test = split_rows(load_dataset(str(repo / DATA_PATH)), params.test_size, params.random_state)
    with tempfile.TemporaryDirectory(dir=repo / ".dvc" / "tmp") as tmp:
        model = joblib.load(fetch_model(repo, version, Path(tmp) / "model.joblib"))
    return score_model(model, test)


def deployed_version(repo: Path) -> str | None:
    """The version in ``output/serving`` if that deployment is complete and consistent."""
    try:
        record = read_deployment(repo / SERVING_DIR, attempts=1).record
    except DeploymentError:
        return None
    return f"{record.get('version')}@{record.get('commit')}"


def compare(repo: Path, params: SelectionParams, label: str) -> dict[str, Any]:
    """Build the comparison of the challenger with the champion (see the module docstring)."""
    metric = params.primary_metric
    metrics_path = repo / METRICS_FILE
    try:
        text = metrics_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = None
    challenger_metrics = parse_metrics(text, str(metrics_path), metric)

    latest = latest_version(repo)
    if latest is None:
        raise SelectionError(
            f"no {ARTIFACT} version is registered; run the register step "
            "(`python -m stages.registry register`) first"
        )
    challenger = ModelVersion(latest.version, latest.commit_hexsha)
    workspace_lock = (repo / "dvc.lock").read_text(encoding="utf-8")
    challenger_lock = git(repo, "show", f"{challenger.commit}:dvc.lock", check=False)
    if model_hash(workspace_lock) != model_hash(challenger_lock):
        raise SelectionError(
            f"the workspace model (dvc.lock) is not {ARTIFACT}@{challenger.version}, the "
            "latest version; bring the pipeline up to date and register it first"
        )

    champion = current_prod(repo)
    champion_part: dict[str, Any] | None = None
    if champion is not None:
        champion_lock = git(repo, "show", f"{champion.commit}:dvc.lock", check=False)
        same_rows = evaluation_basis(champion_lock) == evaluation_basis(workspace_lock)
        if same_rows:
            champion_metrics = parse_metrics(
                git(repo, "show", f"{champion.commit}:{METRICS_FILE}", check=False) or None,
                f"{METRICS_FILE} of {ARTIFACT}@{champion.version}",
                metric,
            )
        else:
            champion_metrics = rescore(repo, champion)
        champion_part = {
            "version": champion.version,
            "commit": champion.commit,
            "metrics": champion_metrics,
            "metrics_source": "recorded" if same_rows else "rescored on the current test rows",
            "prod_tag": champion.tag,
        }

    deltas = metric_deltas(challenger_metrics, champion_part["metrics"]) if champion_part else {}
    if champion is not None and champion.version == challenger.version:
        decision, reason = KEEP, f"challenger {challenger.version} is already the champion"
    elif champion is not None and any(
        a.version == challenger.version for a in prod_assignments(repo)
    ):
        # A version that lost prod was rolled back on purpose; only a person re-promotes it.
        decision, reason = (
            KEEP,
            (
                f"challenger {challenger.version} was rolled back from prod; promote it by hand "
                f"with `make rollback VERSION={challenger.version}`"
            ),
        )
    else:
        decision, reason = decide(
            challenger_metrics[metric],
            champion_part["metrics"][metric] if champion_part else None,
            params.min_improvement,
        )
    if decision == KEEP and champion is not None:
        deployed = deployed_version(repo)
        if deployed != f"{champion.version}@{champion.commit}":
            decision = REDEPLOY
            reason += (
                f"; output/serving holds {deployed or 'no valid deployment'}, "
                f"not prod {champion.version}: redeploying it"
            )

    return {
        "artifact": ARTIFACT,
        "run": label,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rule": {
            "primary_metric": metric,
            "min_improvement": params.min_improvement,
            "statement": (
                f"promote iff there is no prod version, or challenger {metric} - champion "
                f"{metric} > {params.min_improvement}; a tie keeps the champion"
            ),
        },
        "challenger": {
            "version": challenger.version,
            "commit": challenger.commit,
            "metrics": challenger_metrics,
        },
        "champion": champion_part,
        "deltas": deltas,
        "decision": decision,
        "reason": reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["compare"])
    parser.add_argument("--output", default=COMPARISON_PATH)
    args = parser.parse_args()
    repo = Path.cwd()
    # A failed compare must leave no comparison behind for a later step to act on.
    (repo / args.output).unlink(missing_ok=True)
    try:
        params = parse_selection_params(load_section("selection"))
        comparison = compare(repo, params, run_label())
    except (ParamsError, SelectionError, RegistryError) as exc:
        sys.exit(f"selection: {exc}; nothing was promoted")
    write_json(repo / args.output, comparison)
    champion = comparison["champion"]
    print(
        f"selection: challenger {comparison['challenger']['version']} vs champion "
        f"{champion['version'] if champion else 'none'}: {comparison['decision']} "
        f"({comparison['reason']})",
        flush=True,
    )


if __name__ == "__main__":
    main()
