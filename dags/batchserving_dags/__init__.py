"""Helpers of the DAG files: the model repo task, the KMA key hand-over, Slack alerts.

Named for the project (not ``utils``): the dags folder is on every worker's ``sys.path``.
"""
