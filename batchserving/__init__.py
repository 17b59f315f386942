"""ML batch serving with Airflow and DVC: the code the DAGs and the DVC stages run.

Subpackages, one per concern: ``core`` (shared names, params, atomic writes, the repo
lock, repro), ``training`` (the Iris schema and split, scoring), ``registry`` (git, GTO,
the DVC remote), ``selection`` (the promotion rule, compare, promote), ``serving`` (the
deployment record, batch scoring) and ``weather`` (the KMA client and its fake server).

It also says where the project's checkout is (the package is installed from it in
editable mode, ``make setup``): its root, the Airflow dags and plugins folders.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
PLUGINS_FOLDER = PROJECT_ROOT / "plugins"
