"""ML batch serving with Airflow and DVC: the code the DAGs and the DVC stages run.

Subpackages, one per concern: ``core`` (shared names, params, atomic writes, the repo
lock, repro), ``training`` (the Iris schema and split, scoring), ``registry`` (git, GTO,
the DVC remote), ``selection`` (the promotion rule, compare, promote), ``serving`` (the
deployment record, batch scoring) and ``weather`` (the KMA client and its fake server).
"""
