"""``make demo``: the whole job through Airflow on the embedded default, then a summary.

Runs ``simple_train`` → ``model_selection`` → ``batch_inference`` → ``crawling_weather``
once each with ``airflow dags test`` (the real task runner, the project's Airflow home),
against a model repo that is a clone of this project in ``.demo/model-repo`` (or
``$MODEL_REPO`` if set), so the checkout's own history stays clean. Without a ``kma_api``
connection it starts the local fake KMA server and says that the weather is simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / ".demo"
DAG_IDS = ["simple_train", "model_selection", "batch_inference", "crawling_weather"]
FAKE_KEY = "demo-simulated-key"


def say(text: str = "") -> None:
    print(text, flush=True)


def run(cmd: list[str], cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)


def demo_model_repo() -> Path:
    """``$MODEL_REPO`` if set, else a clone of this project (made once, then reused)."""
    if os.environ.get("MODEL_REPO"):
        return Path(os.environ["MODEL_REPO"]).resolve()
    repo = DEMO_DIR / "model-repo"
    if not (repo / ".git").is_dir():
        DEMO_DIR.mkdir(exist_ok=True)
        result = run(["git", "clone", "-q", str(ROOT), str(repo)])
        if result.returncode != 0:
            sys.exit(f"demo: cannot clone {ROOT} into {repo}: {result.stderr.strip()}")
        say(f"demo: model repo {repo} (a fresh clone of this project's HEAD)")
    else:
        say(f"demo: model repo {repo} (kept from the last demo; `make clean` starts afresh)")
    return repo


def has_connection(conn_id: str) -> bool:
    """Whether Airflow knows ``conn_id`` (environment or metadata DB); never prints it."""
    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return True
    return run(["airflow", "connections", "get", conn_id, "-o", "json"]).returncode == 0


@contextmanager
def fake_kma_server() -> Generator[str, None, None]:
    """The local fake KMA server (simulated forecasts); yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchserving.weather.fake_kma", "--port", "0", "--key", FAKE_KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            sys.exit("demo: the fake KMA server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_dag(dag_id: str, env: dict[str, str], log_dir: Path) -> bool:
    """``airflow dags test DAG_ID``; the full log goes to a file, one line to the screen."""
    log_path = log_dir / f"{dag_id}.log"
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(
            ["airflow", "dags", "test", dag_id],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    verdict = "succeeded" if code == 0 else f"FAILED (log: {log_path})"
    say(f"  {dag_id:<18} {verdict}  {time.monotonic() - started:5.0f} s")
    return code == 0


def summary(repo: Path) -> None:
    """What the run left behind, and where to look further."""
    tags = run(["git", "tag", "--list", "iris-model@*", "--sort=v:refname"], cwd=repo)
    say("\nSummary")
    say(f"  model repo          {repo}")
    say(f"  versions registered {' '.join(tags.stdout.split()) or 'none'}")
    record_path = repo / "output/serving/model.json"
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        metrics = record.get("metrics", {})
        say(
            f"  prod version        {record['version']} (commit {record['commit'][:12]}): "
            f"accuracy {metrics.get('accuracy')}, macro F1 {metrics.get('f1_macro')}"
        )
    else:
        say("  prod version        none deployed")
    predictions = sorted((repo / "output/predictions").glob("*/*.csv"))
    if predictions:
        rows = len(predictions[-1].read_text(encoding="utf-8").splitlines()) - 1
        say(f"  latest predictions  {predictions[-1]} ({rows} rows)")
    else:
        say("  latest predictions  none")
    say(f"  weather stored      {weather_summary(repo)}")
    say("\nLook further:")
    say(f"  cd {repo} && export PATH={ROOT / '.venv/bin'}:$PATH")
    say("  gto show  |  git tag  |  dvc metrics show  |  dvc plots show")
    say("  dvc metrics diff iris-model@v0.0.1 HEAD   # once two versions exist")
    say(f"  cd {ROOT} && make airflow   # the UI on http://127.0.0.1:8080")


def weather_summary(repo: Path) -> str:
    """Issuances fetched and forecast rows kept, from the preprocess stage's outputs."""
    raw = sorted((repo / "output/weather/raw").glob("*.json"))
    if not raw:
        return "none"
    import pandas as pd

    history = repo / "output/weather/history"
    rows = sum(len(pd.read_parquet(p)) for p in history.glob("*.parquet"))
    return f"{len(raw)} issuance(s) (latest {raw[-1].stem}), {rows} forecast values in history"


def main() -> None:
    repo = demo_model_repo()
    log_dir = DEMO_DIR / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MODEL_REPO": str(repo)}
    if not has_connection("my_webhook"):
        say("demo: no Slack connection `my_webhook`: alerts are skipped (see README)")
    use_fake = not has_connection("kma_api")
    with fake_kma_server() if use_fake else nullcontext() as fake_url:
        if fake_url:
            say(
                f"demo: no `kma_api` connection: weather comes from the local FAKE KMA server at "
                f"{fake_url}. The forecasts are SIMULATED, not real KMA data."
            )
            conn = {"conn_type": "http", "host": fake_url, "password": FAKE_KEY}
            env["AIRFLOW_CONN_KMA_API"] = json.dumps(conn)
        say(f"demo: running the four DAGs through Airflow (logs in {log_dir})")
        results = [run_dag(dag_id, env, log_dir) for dag_id in DAG_IDS]
    summary(repo)
    if not all(results):
        sys.exit("demo: a DAG failed; its log is named above")


if __name__ == "__main__":
    main()
