"""Every name the parts share, defined once: paths, the artifact, the stages.

Read by ``dvc.yaml`` (``vars``: DVC reads the literal assignments of this file), the
commands the DAGs run, the stages and the tests. Keep it to literal assignments: DVC
parses it without running it. It is the one module of the package a DAG parse imports
(the assets' names, ``dags/batchserving_dags/assets.py``), so it imports nothing; the
Airflow pool is named in ``dags/batchserving_dags``.
"""

# The pipeline's files, relative to the model repo's root.
PARAMS_FILE = "params.yaml"
DATA_PATH = "output/data/iris.csv"
MODEL_PATH = "output/model/model.joblib"
METRICS_FILE = "metrics.json"
PLOTS_DIR = "output/plots"
CONFUSION_PLOT = "output/plots/confusion.csv"
IMPORTANCE_PLOT = "output/plots/feature_importance.csv"
WEATHER_DIR = "output/weather"
WEATHER_RAW_DIR = "output/weather/raw"
WEATHER_HISTORY_DIR = "output/weather/history"
WEATHER_LATEST_DIR = "output/weather/latest"
WEATHER_STATE_FILE = "output/weather/state.json"
WEATHER_QUARANTINE_DIR = "output/weather/quarantine"  # raw files preprocess could not read
SERVING_DIR = "output/serving"
PREDICTIONS_DIR = "output/predictions"
# A large batch's true labels, beside it: <name>.labels.csv (batchserving.monitoring.served).
LABELS_SUFFIX = ".labels.csv"
# Under the default DVC remote: every worker's prediction files, for the monitor
# (batchserving.serving.shared); DVC's own objects are under files/md5/.
SHARED_PREDICTIONS = "served/predictions"
# Inside .dvc/tmp: one empty file per prediction file the remote did not take yet.
UNSHARED_DIR = ".dvc/tmp/unshared-predictions"
# Inside .dvc/tmp, which git and DVC ignore.
LOCK_FILE = ".dvc/tmp/model-repo.lock"
STAGING_DIR = ".dvc/tmp/promote-staging"
# Inference's read-only mirror of the registry's tags (never the workspace's own refs).
SERVING_REGISTRY = ".dvc/tmp/serving-registry.git"

# The weather pipeline has a dvc.yaml of its own, so `dvc repro` and `dvc exp run` at the
# root run only the model pipeline and never need a KMA key. Its lock file is the weather
# data version; stages are addressed as PIPELINE:STAGE.
PIPELINE = "dvc.yaml"  # the model pipeline, at the root
PIPELINE_LOCK = "dvc.lock"
WEATHER_PIPELINE = "weather/dvc.yaml"
WEATHER_LOCK = "weather/dvc.lock"
# The monitoring pipeline: a day of served predictions against the training data and the
# truth. Per-day reports accumulate under MONITORING_DIR; the latest day's metrics and the
# history of every day (for `dvc metrics` / `dvc plots`) are small, git-tracked files.
MONITORING_PIPELINE = "monitoring/dvc.yaml"
MONITORING_LOCK = "monitoring/dvc.lock"
MONITORING_DIR = "output/monitoring"
MONITORING_METRICS = "monitoring/metrics.json"
MONITORING_HISTORY = "monitoring/history.csv"
MONITOR_STAGE = "monitor_predictions"

# DVC stages whose outputs the registry reads.
PREPARE_STAGE = "prepare"
TRAIN_STAGE = "train"
EVALUATE_STAGE = "evaluate"

# The model artifact (dvc.yaml `artifacts:`, GTO tags iris-model@vX.Y.Z, iris-model#prod#N).
ARTIFACT = "iris-model"
PROD_STAGE = "prod"
