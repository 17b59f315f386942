"""Helpers of the DAG files: the model repo task, the KMA key hand-over, Slack alerts.

Named for the project (not ``utils``): the dags folder is on every worker's ``sys.path``.
The Airflow pool of every task that writes the model repo is defined here, where every DAG
parse finds it for free; ``python -m batchserving_dags`` (run in the dags folder) creates it.
"""

POOL = "model_repo"
POOL_SLOTS = 1
POOL_DESCRIPTION = "Writers of the model repo (dvc, git, gto): one at a time"
