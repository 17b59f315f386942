"""The fake KMA server for a cluster without a real KMA key: simulated forecasts on 127.0.0.1.

It takes requests only with the cluster's own fake key; its base URL, which it prints
when it listens, is recorded in ``cluster.json`` for the ``kma_api`` connection.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from scripts.cluster.state import ClusterState


@dataclass
class FakeKma:
    """``batchserving.weather.fake_kma`` on ``state.ports['kma']``."""

    state: ClusterState

    def start(self) -> None:
        log = self.state.log("fake-kma")
        offset = log.stat().st_size if log.exists() else 0
        cmd = [sys.executable, "-m", "batchserving.weather.fake_kma"]
        cmd += ["--port", str(self.state.ports["kma"]), "--key", self.state.secrets.fake_kma_key]
        self.state.spawn("fake-kma", cmd)

        def base_url() -> str | None:
            with open(log, "rb") as out:
                out.seek(offset)
                urls = [ln for ln in out.read().decode().splitlines() if ln.startswith("http")]
            return urls[0] if urls else None

        self.state.wait_for("fake-kma", base_url)
        self.state.fake_kma_url = base_url()
        self.state.save()
