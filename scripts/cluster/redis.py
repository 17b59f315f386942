"""Redis for the cluster: the Celery broker, password-protected, nothing saved to disk."""

from __future__ import annotations

from dataclasses import dataclass

from scripts.cluster.state import ClusterState, need


@dataclass
class Redis:
    """The cluster's Redis server on ``state.ports['redis']``."""

    state: ClusterState

    @property
    def broker_url(self) -> str:
        pw, port = self.state.secrets.redis_password, self.state.ports["redis"]
        return f"redis://:{pw}@127.0.0.1:{port}/0"

    def start(self) -> None:
        redis_dir = self.state.data / "redis"
        redis_dir.mkdir(exist_ok=True)
        cmd = [need("redis-server", "redis-server"), "--bind", "127.0.0.1"]
        cmd += ["--port", str(self.state.ports["redis"]), "--dir", str(redis_dir), "--save", ""]
        cmd += ["--appendonly", "no", "--requirepass", self.state.secrets.redis_password]
        self.state.spawn("redis", cmd)
        self.state.wait_for("redis", self.ping)

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.broker_url, socket_timeout=2).ping()
        except redis.RedisError:
            return False
