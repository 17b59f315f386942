"""dvc.lock as the registry reads it: the model's pinned hash and the files a version pins."""

from __future__ import annotations

import textwrap

from batchserving.registry.dvclock import model_hash, pinned_files

LOCK_TEXT = textwrap.dedent(
    """\
    schema: '2.0'
    stages:
      train:
        cmd: python -m stages.train
        deps:
        - path: stages/train.py
          md5: aaa
        params:
          params.yaml:
            train.n_estimators: 100
        outs:
        - path: output/model/model.joblib
          md5: 6c1be1efb0d060cfb7356f18ed2299e4
    """
)


def test_model_hash_and_pinned_files() -> None:
    assert model_hash(LOCK_TEXT) == "6c1be1efb0d060cfb7356f18ed2299e4"
    assert model_hash(None) is None
    assert model_hash("schema: '2.0'\nstages: {}\n") is None
    assert {"stages/train.py", "params.yaml", "dvc.lock", "metrics.json"} <= pinned_files(LOCK_TEXT)


def test_pinned_files_never_name_a_data_pipelines_lock() -> None:
    weather_lock = textwrap.dedent(
        """\
        schema: '2.0'
        stages:
          fetch_weather:
            deps:
            - path: stages/fetch_weather.py
              md5: 581f25f6c5cb5162e7e3c6efdce63018
            params:
              params.yaml:
                weather.nx: 60
        """
    )
    files = pinned_files(LOCK_TEXT, weather_lock)
    assert "stages/fetch_weather.py" in files and "stages/train.py" in files
    # A model version's commit on main never carries a data version (data/<name> does).
    assert "weather/dvc.lock" not in files and "weather/dvc.lock" not in pinned_files(LOCK_TEXT)
