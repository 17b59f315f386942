"""The host name a cluster worker reports for the tasks it runs (``[core] hostname_callable``).

Airflow records where a task ran as the worker machine's name; the local cluster's
workers share one machine, so each reports the name ``scripts.cluster`` gives it in
``CLUSTER_WORKER_NAME`` (its Celery host name's first part). Kept apart from
``scripts.cluster`` so a task process imports nothing else to ask.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("CLUSTER_WORKER_NAME") or socket.getfqdn()
