"""URLs with credentials are refused, and every URL a message shows is redacted."""

from __future__ import annotations

import pytest

from batchserving.core.urls import UnsafeUrl, checked_url, redact_url, redact_urls

SECRET = "s3cr3t-T0KEN-9f8e7d"
WHERE = "connection 'model_repo_git'"


@pytest.mark.parametrize(
    "url",
    [
        f"https://bot:{SECRET}@git.example.com/model-repo.git",
        f"https://{SECRET}@git.example.com/model-repo.git",  # a token as the user name
        f"http://bot:{SECRET}@127.0.0.1:8080/model-repo.git",
        f"ssh://git:{SECRET}@git.example.com:2222/srv/model-repo.git",  # ssh, with a password
        f"s3://AKIAEXAMPLE:{SECRET}@model-registry/dvc",
        f"https://git.example.com/model-repo.git?private_token={SECRET}",
        f"https://git.example.com/model-repo.git#{SECRET}",
    ],
)
def test_a_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(UnsafeUrl) as excinfo:
        checked_url(url, "MODEL_REPO_URL", WHERE)
    message = str(excinfo.value)
    assert SECRET not in message
    assert "MODEL_REPO_URL" in message and "carries credentials" in message
    assert WHERE in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "ssh://git@127.0.0.1:2222/srv/git/model-repo.git",  # an ssh user name is no secret
        "git@git.example.com:team/model-repo.git",  # scp-like
        "https://git.example.com/team/model-repo.git",
        "file:///srv/git/model-repo.git",
        "/srv/git/model-repo.git",
        "/srv/git/odd?name#repo.git",  # a path: ? and # are part of the name
        "s3://model-registry/dvc",
    ],
)
def test_a_url_without_credentials_is_kept_as_it_is(url: str) -> None:
    assert checked_url(url, "MODEL_REPO_URL", WHERE) == url
    assert redact_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/" + "a" * 5000,
        "https://git.example.com/repo.git\n[core]\n\tsshCommand = evil",
        "https://git.example.com/repo .git",
    ],
)
def test_an_overlong_or_multiline_url_is_refused_in_one_short_line(url: str) -> None:
    with pytest.raises(UnsafeUrl) as excinfo:
        checked_url(url, "DVC_REMOTE_URL", WHERE)
    message = str(excinfo.value)
    assert "DVC_REMOTE_URL" in message and len(message) < 300 and "\n" not in message


def test_unset_is_none() -> None:
    assert checked_url(None, "MODEL_REPO_URL", WHERE) is None
    assert checked_url("", "MODEL_REPO_URL", WHERE) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://bot:{SECRET}@host/r.git", "https://***@host/r.git"),
        (f"https://{SECRET}@host/r.git", "https://***@host/r.git"),
        (f"ssh://git:{SECRET}@host:22/r.git", "ssh://***@host:22/r.git"),
        ("ssh://git@host:22/r.git", "ssh://git@host:22/r.git"),
        (f"https://host/r.git?token={SECRET}", "https://host/r.git?***"),
    ],
)
def test_redaction_hides_the_secret_and_keeps_the_place(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_urls_in_free_text_are_all_redacted() -> None:
    text = f"from https://a:{SECRET}@h1/x and s3://k:{SECRET}@bucket/y, 'http://{SECRET}@h2/'"
    assert SECRET not in redact_urls(text)
    assert redact_urls("no url here") == "no url here"
