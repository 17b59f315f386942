"""The DVC stages `dvc.yaml` runs, one module each (prepare, train, evaluate, weather)."""
