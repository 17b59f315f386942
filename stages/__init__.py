"""DVC stages and the shared pieces they need (params, atomic writes, repo lock, registry)."""
