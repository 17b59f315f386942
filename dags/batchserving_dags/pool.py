"""The Airflow pool of every task that writes the model repo: one writer at a time."""

POOL = "model_repo"
POOL_SLOTS = 1
POOL_DESCRIPTION = "Writers of the model repo (dvc, git, gto): one at a time"
