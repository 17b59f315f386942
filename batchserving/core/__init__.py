"""What every other part shares: names and paths, params, atomic writes, the repo lock."""
