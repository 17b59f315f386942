"""The DAG files' helpers, one module per concern.

``pool`` (the model repo's pool), ``assets`` (what the DAGs produce and consume, and the
extras of their events), ``operators`` (the project's task types), ``alerts`` (Slack),
``branch`` (what ``model_selection`` decides from the comparison), and what a task reads
from Airflow when it runs: ``credentials`` (git server, DVC remote) and ``kma_connection``
(the KMA key). Heavy libraries are imported inside the functions that use them, never
when a DAG file is parsed.

Named for the project (not ``utils``): the dags folder is on every worker's ``sys.path``.
``python -m batchserving_dags`` (run in the dags folder) creates the pool.
"""
