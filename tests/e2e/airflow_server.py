"""The Airflow launcher lives in the product (``scripts.airflow_server``, used by ``make demo``).

Re-exported here for test code that imports it from its former place.
"""

from scripts.airflow_api import fernet_key, free_port, pids_with_env  # noqa: F401
from scripts.airflow_server import AIRFLOW, USER, AirflowServer  # noqa: F401
