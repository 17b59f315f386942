"""The cluster's git server: sshd serving the shared model repo to one key, and nothing else.

The bare repository is seeded once from ``source``'s HEAD; the key's forced command lets
it run a fetch or a push of that repository only (``git-gate.sh``). ``git_env()`` and
``known_hosts`` reach it with checked host keys.
"""

from __future__ import annotations

import os
import pwd
import shlex
from dataclasses import dataclass
from pathlib import Path

from batchserving.core.atomic import write_private
from scripts.cluster.state import OWNER_ONLY, ClusterError, ClusterState, need, run
from scripts.processes import answers


@dataclass
class GitServer:
    """sshd on ``state.ports['ssh']`` serving ``bare_repo``, seeded from ``source``."""

    state: ClusterState
    source: Path

    @property
    def bare_repo(self) -> Path:
        return self.state.data / "git" / "model-repo.git"

    @property
    def ssh_dir(self) -> Path:
        return self.state.data / "ssh"

    @property
    def private_key(self) -> Path:
        return self.ssh_dir / "model_repo_key"

    @property
    def git_user(self) -> str:
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def model_repo_url(self) -> str:
        return f"ssh://{self.git_user}@127.0.0.1:{self.state.ports['ssh']}{self.bare_repo}"

    @property
    def known_hosts(self) -> str:
        """The git server's host key as a known_hosts line."""
        host_key = (self.ssh_dir / "host_key.pub").read_text(encoding="utf-8").split()
        return f"[127.0.0.1]:{self.state.ports['ssh']} {host_key[0]} {host_key[1]}"

    def git_env(self, tmp: Path | None = None) -> dict[str, str]:
        """git's environment to reach the server with the cluster's key (the harness's own
        use: a person's clone in the tests, the start-up check)."""
        known = write_private((tmp or self.ssh_dir) / "known_hosts", self.known_hosts + "\n")
        ssh = f"ssh -i {self.private_key} -o UserKnownHostsFile={known} -o IdentitiesOnly=yes"
        return {**self.state.env(), "GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes"}

    def start(self) -> None:
        self._ssh_keys()
        if not (self.bare_repo / "HEAD").exists():
            run(["git", "init", "--quiet", "--bare", "-b", "main", str(self.bare_repo)], "git init")
            push = ["git", "-C", str(self.source), "push", "--quiet", str(self.bare_repo)]
            run([*push, "HEAD:refs/heads/main"], f"seeding the git server from {self.source}")
        sshd = need("sshd", "openssh-server")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        config = self.ssh_dir / "sshd_config"
        write_private(config, self._sshd_config())
        self.state.spawn("sshd", [sshd, "-D", "-e", "-f", str(config)])
        self.state.wait_for("sshd", lambda: answers(self.state.ports["ssh"]))
        run(["git", "ls-remote", self.model_repo_url], "git over ssh", env=self.git_env())

    def _ssh_keys(self) -> None:
        self.ssh_dir.mkdir(mode=0o700, exist_ok=True)
        for key, comment in ((self.ssh_dir / "host_key", "host"), (self.private_key, "git")):
            if not key.exists():
                cmd = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"cluster-{comment}"]
                run([*cmd, "-f", str(key)], "ssh-keygen")
        public = self.private_key.with_suffix(".pub").read_text(encoding="utf-8").strip()
        gate = self._write_git_gate()
        # `restrict`: no pty, no forwarding; the forced command: the model repo only.
        authorized = f'restrict,command="{shlex.quote(str(gate))}" {public}\n'
        write_private(self.ssh_dir / "authorized_keys", authorized)

    def _write_git_gate(self) -> Path:
        """The key's forced command: git-shell runs a fetch or a push of the model repo, and
        nothing else (git-shell alone would serve any repository the login user can read)."""
        git_shell = need("git-shell", "git")
        allowed = [f"git-{verb}-pack '{self.bare_repo}'" for verb in ("upload", "receive")]
        if any(ch in str(self.bare_repo) for ch in "'\"\\$`\n"):
            raise ClusterError(
                f"the data folder's path ({str(self.state.data)[:80]}) has a quote, $ or ` in "
                "it, which the git server's forced command cannot hold: choose another folder"
            )
        gate = self.ssh_dir / "git-gate.sh"
        script = "\n".join(
            [
                "#!/bin/sh",
                "# sshd's forced command for the git key (see scripts/cluster/git_server.py).",
                'case "$SSH_ORIGINAL_COMMAND" in',
                f"{' | '.join(shlex.quote(cmd) for cmd in allowed)})",
                f'    exec {shlex.quote(git_shell)} -c "$SSH_ORIGINAL_COMMAND" ;;',
                "esac",
                f"echo 'this key reaches {self.bare_repo} only (git fetch and push)' >&2",
                "exit 1",
                "",
            ]
        )
        write_private(gate, script)
        gate.chmod(OWNER_ONLY)
        return gate

    def _sshd_config(self) -> str:
        ssh = self.ssh_dir
        return "\n".join(
            [
                f"Port {self.state.ports['ssh']}",
                "ListenAddress 127.0.0.1",
                f"HostKey {ssh / 'host_key'}",
                "PidFile none",
                f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                f"AllowUsers {self.git_user}",
                "AuthenticationMethods publickey",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin forced-commands-only",
                # The data folder may sit in /tmp (the tests), which StrictModes rejects.
                "StrictModes no",
                "AllowTcpForwarding no",
                "AllowAgentForwarding no",
                "AllowStreamLocalForwarding no",
                "X11Forwarding no",
                "PermitTTY no",
                "PermitTunnel no",
                "PermitUserRC no",
                "PrintMotd no",
                "",
            ]
        )
