"""Scoring with the deployed model: the seeded scheduled sample and streamed large batches.

A large file is read, scored and written one chunk at a time, so memory stays at about
one chunk whatever the input size. (Overlapping the three in threads bought under 10 %:
predicting takes nearly all the time.) The class and lineage columns are
dictionary-encoded in memory and in Parquet (pandas reads them as ``category``); in CSV
they are plain text. Heavy libraries are imported inside
functions: the scheduled run's wall time is dominated by loading the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchserving.core.atomic import atomic_path
from batchserving.registry.integrity import ModelIntegrityError
from batchserving.serving.deployment import Deployment, load_deployed
from batchserving.serving.tables import (
    IRIS_ROW,
    TableWriter,
    check_features,
    output_format,
    output_schema,
    read_chunks,
)
from batchserving.training.iris import FEATURES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class ModelLoadError(RuntimeError):
    """The deployed model file passed its md5 check but cannot be loaded as a classifier."""


@dataclass(frozen=True)
class Lineage:
    """What every output row says about where its prediction came from."""

    model_version: str
    model_commit: str
    run_id: str


def load_model(deployment: Deployment, n_jobs: int = 1) -> Any:
    """Unpickle the deployed classifier, its md5 checked first; ModelLoadError if it cannot be."""
    model_path = deployment.model_path
    try:
        model = load_deployed(deployment)
    except ModelIntegrityError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise ModelLoadError(
            f"cannot load the deployed model {model_path} ({type(exc).__name__}: {exc}); "
            "redeploy with `make redeploy` or run model_selection"
        ) from None
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise ModelLoadError(
            f"{model_path} holds a {type(model).__name__}, not a fitted classifier; "
            "redeploy with `make redeploy` or run model_selection"
        )
    if hasattr(model, "n_jobs"):
        model.n_jobs = n_jobs
    return model


def sample_seed(logical_date: datetime) -> int:
    """The sampling seed of a run: its logical date as whole seconds since the epoch (UTC)."""
    return int(logical_date.timestamp())


def sample_features(n_samples: int, logical_date: datetime) -> pd.DataFrame:
    """``n_samples`` rows of the Iris features, the same rows for the same logical date.

    Rows come from the copy of Iris bundled with scikit-learn (no download, and never the
    training workspace); drawn without replacement up to the 150 rows Iris has. The index
    (``IRIS_ROW``) is each row's position in Iris: the key its true label is joined on.
    """
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris

    data = load_iris().data
    rng = np.random.default_rng(sample_seed(logical_date))
    rows = rng.choice(len(data), size=n_samples, replace=n_samples > len(data))
    return pd.DataFrame(data[rows], columns=FEATURES, index=pd.Index(rows, name=IRIS_ROW))


def score_table(model: Any, features: Any, passthrough: pa.Table, lineage: Lineage) -> pa.Table:
    """Scored rows: ``passthrough`` (the input's columns), then prediction and lineage columns.

    ``predicted_class`` is exactly ``model.predict`` (the class with the highest
    probability) and ``probability`` is that class's ``predict_proba``.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    # A DataFrame with the training column names, as the model was fitted on.
    proba = model.predict_proba(pd.DataFrame(features, columns=FEATURES, copy=False))
    best = np.argmax(proba, axis=1)
    n = len(best)
    # Class and lineage columns are dictionary-encoded: a few bytes a row instead of a copy
    # of the same strings (40-character commit, run id) in every row of every chunk in flight.
    classes = pa.array([str(c) for c in model.classes_], type=pa.string())
    one_value = pa.array(np.zeros(n, dtype=np.int8))
    columns = {
        "predicted_class": pa.DictionaryArray.from_arrays(pa.array(best.astype(np.int32)), classes),
        "probability": pa.array(proba[np.arange(n), best]),
        **{
            name: pa.DictionaryArray.from_arrays(one_value, pa.array([value], pa.string()))
            for name, value in (
                ("model_version", lineage.model_version),
                ("model_commit", lineage.model_commit),
                ("run_id", lineage.run_id),
            )
        },
    }
    for name, column in columns.items():
        passthrough = passthrough.append_column(name, column)
    return passthrough


def score_file(
    model: Any, input_path: Path, output_path: Path, lineage: Lineage, chunk_rows: int
) -> int:
    """Score ``input_path`` into ``output_path`` chunk by chunk; return the number of rows.

    The output appears only when every row is scored; on any error nothing is left behind
    (and an existing file at ``output_path`` is left as it was).
    """
    fmt = output_format(output_path)
    rows = 0
    last_schema = None
    with atomic_path(output_path) as tmp:
        writer = TableWriter(tmp, fmt)
        for chunk in read_chunks(input_path, chunk_rows):
            table = score_table(model, chunk.features, chunk.passthrough, lineage)
            last_schema = table.schema
            rows += table.num_rows
            writer.write(table)
        writer.close(last_schema or output_schema(input_path))
    return rows


def write_sample_predictions(
    model: Any,
    n_samples: int,
    logical_date: datetime,
    lineage: Lineage,
    target: Path,
    shift: Mapping[str, float] | None = None,
) -> int:
    """Score the seeded sample of a logical date and write it atomically (CSV or Parquet).

    The first column, ``IRIS_ROW``, names the Iris row each sampled row was drawn from.
    ``shift`` (feature -> cm, added before scoring) makes a drifted sample for trying
    monitoring (``scripts/served_day.py``); batch inference never passes it.
    """
    import pyarrow as pa

    fmt = output_format(target)  # before atomic_path makes the target's folders
    features = sample_features(n_samples, logical_date)
    for feature, amount in (shift or {}).items():
        features[feature] += amount
    array = check_features(features, 1)
    passthrough = pa.table(
        {
            IRIS_ROW: pa.array(features.index.to_numpy(), pa.int64()),
            **{c: pa.array(array[:, i]) for i, c in enumerate(FEATURES)},
        }
    )
    table = score_table(model, array, passthrough, lineage)
    with atomic_path(target) as tmp:
        writer = TableWriter(tmp, fmt)
        writer.write(table)
        writer.close(table.schema)
    return table.num_rows
