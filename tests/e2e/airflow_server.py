"""The Airflow launcher lives in the product (``scripts.airflow_server``, used by ``make demo``).

Re-exported here for test code that imports it from its former place.
"""

from scripts.airflow_server import (  # noqa: F401
    AIRFLOW,
    USER,
    AirflowServer,
    fernet_key,
    free_port,
    pids_with_env,
)
