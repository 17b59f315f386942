"""Why a git command failed, told in a few bounded lines: URLs redacted, host keys explained."""

from __future__ import annotations

from batchserving.registry.git import last_lines

SECRET = "s3cr3t-T0KEN-9f8e7d"


def test_a_commands_output_is_redacted_and_bounded() -> None:
    stderr = (
        "Cloning into '/tmp/x'...\n"
        f"fatal: unable to access 'https://bot:{SECRET}@127.0.0.1:9/r.git/': Failed to connect\n"
        + "x" * 100_000
        + "\n"
    )
    reason = last_lines(stderr)
    assert SECRET not in reason and "https://***@127.0.0.1:9/r.git/" in reason
    assert len(reason) < 600


def test_a_refused_host_key_is_explained_whatever_git_says_last() -> None:
    stderr = (
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
        "Host key verification failed.\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\n"
        "and the repository exists.\n"
    )
    reason = last_lines(stderr)
    assert reason.startswith("the git server's ssh host key is not one that connection")
    assert "known_hosts" in reason and "impersonating" in reason


def test_an_ssh_timeout_is_in_the_reason_not_gits_advice() -> None:
    stderr = (
        "Timeout, server 127.0.0.1 not responding.\r\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\n"
        "and the repository exists.\n"
    )
    reason = last_lines(stderr)
    assert reason == (
        "Timeout, server 127.0.0.1 not responding. | fatal: Could not read from remote repository."
    )
