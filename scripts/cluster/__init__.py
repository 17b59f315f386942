"""The cluster on one machine: every part a real deployment has, on 127.0.0.1.

    python -m scripts.cluster up [--workers N]   # start it, or restart the parts that are down
    python -m scripts.cluster status             # every part, its pid, the URLs
    python -m scripts.cluster restart PART ...   # restart one part on purpose
    python -m scripts.cluster down               # stop every process it started, by pid

Parts, each a process in its own process group with its pid recorded in ``cluster.json``:
PostgreSQL (Airflow's metadata DB and the Celery result backend), Redis (the Celery
broker), SeaweedFS (an S3 endpoint: the shared DVC remote), sshd (the git server holding
the shared model repo; its key reaches that repository only), the fake KMA server
(unless a real KMA key is configured), Airflow's API server, scheduler, DAG processor and
triggerer, and Celery workers (two unless told), each with a workspace of its own
(``MODEL_REPO``). Every port is chosen free once and recorded, then the same at every
start; every file is under one data folder (``.cluster/`` for ``make cluster``; a temp
dir in the tests). Starting again on the same folder reuses its data (DB, registry,
remote, keys) and its set of workers.

Every part takes a request only with a credential kept in the data folder (signed S3
requests, JWTs and mutual TLS inside SeaweedFS, passwords, the git key), and every file
and folder the cluster makes there is its owner's only (docs/security.md, "The local cluster").

Workers get ``MODEL_REPO``, ``MODEL_REPO_URL`` and ``DVC_REMOTE_URL``; credentials are
in the Airflow connections ``model_repo_git`` and ``dvc_remote`` only, which the tasks
read when they run, never in a worker's environment.

One module per part (``postgres``, ``redis``, ``seaweedfs`` with ``seaweedfs_tls``,
``git_server``, ``kma``, ``airflow``), ``state`` for what they share (the data folder,
secrets, ports, pids), ``cluster`` for the whole, ``__main__`` for the command line.
"""
