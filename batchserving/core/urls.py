"""URLs from the environment: refuse the ones that carry credentials; redact any shown.

Credentials belong in the Airflow connections (``model_repo_git``, ``dvc_remote``), which
the tasks hand to git and DVC through their environment only. A secret in a URL would
not stay there: git copies a remote's URL into ``.git/config`` (mode 0644) and into its
messages, DVC into ``.dvc/config.local``, and every error that names the remote shows it.
So ``checked_url`` refuses a URL with a password in it (``scheme://user:secret@host``),
any user part outside ssh (an https ``token@host`` is a secret too), and a query string
or fragment (``?private_token=...``). An ssh user name alone (``ssh://git@host/path``)
is no secret and is kept. ``redact_url`` / ``redact_urls`` are what every message that
shows a URL uses, whatever the URL's origin.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from batchserving.core.excerpt import clip

# ssh-like schemes authenticate with keys: the user part names an account, not a secret.
SSH_SCHEMES = frozenset({"ssh", "git+ssh", "ssh+git", "sftp"})
MAX_URL_CHARS = 2048
HIDDEN = "***"
# A URL inside free text (a git or DVC message): up to a space or a quote around it.
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


class UnsafeUrl(ValueError):
    """A URL from the environment carries credentials, or is not a URL one can use."""


def _has_credentials(url: str) -> bool:
    if "://" not in url:
        return False  # a path, or git's scp-like user@host:path (which has no password)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return True
    user, at, _ = parts.netloc.rpartition("@")
    if not at:
        return False
    return ":" in user or parts.scheme.lower() not in SSH_SCHEMES


def redact_url(url: str) -> str:
    """``url`` with its credentials (password, non-ssh user part, query) replaced by ***."""
    if "://" not in url:
        return url  # a path, or git's scp-like user@host:path (which has no password)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that does not parse)"
    user, at, host = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        keep = parts.scheme.lower() in SSH_SCHEMES and ":" not in user
        netloc = f"{user if keep else HIDDEN}@{host}"
    return urlunsplit(
        parts._replace(
            netloc=netloc,
            query=HIDDEN if parts.query else "",
            fragment=HIDDEN if parts.fragment else "",
        )
    )


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted (for a command's output shown in an error)."""
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def checked_url(url: str | None, variable: str, where_credentials_go: str) -> str | None:
    """``url`` (from ``variable``) if it is safe to store and show, None if unset.

    Raise UnsafeUrl, naming ``variable`` and ``where_credentials_go``, when the URL carries
    credentials, is longer than MAX_URL_CHARS or holds a space or control character. The
    message shows the URL redacted and cut, never the secret.
    """
    if not url:
        return None
    if len(url) > MAX_URL_CHARS or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UnsafeUrl(
            f"{variable} is not a usable URL (longer than {MAX_URL_CHARS} characters, or "
            f"holding a space or control character): set it to the URL alone"
        )
    try:
        unsafe = _has_credentials(url)
    except ValueError:
        raise UnsafeUrl(f"{variable} is not a URL that parses: {clip(redact_url(url))}") from None
    if unsafe:
        raise UnsafeUrl(
            f"{variable}={clip(redact_url(url))} carries credentials (a user:password, an "
            f"https user or token, or a query string): remove them from the URL and put them "
            f"in {where_credentials_go}"
        )
    return url
