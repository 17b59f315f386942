"""The model registry: git commits, GTO versions and stage assignments, the DVC remote."""
