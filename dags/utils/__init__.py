"""Small helpers shared by the DAG files: the model repo command, the pool, Slack alerts."""
