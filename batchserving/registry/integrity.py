"""A model is unpickled only if its bytes have the md5 its version's commit pins.

Unpickling runs code, and the file comes from outside the process: the DVC remote (which
anyone holding the bucket keys can write), the local DVC cache, the serving cache. The
one trustworthy fact is the md5 that the version's ``dvc.lock`` pins, in git. So every
load reads the file's bytes once, hashes those bytes and unpickles those same bytes:
nothing can swap the file between the check and the load.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from batchserving.core.names import ARTIFACT, PIPELINE_LOCK
from batchserving.registry.dvclock import model_hash
from batchserving.registry.git import RegistryError, show

# An Iris forest is about 200 KB; a file far beyond any model this pipeline trains is
# refused before it is read into memory.
MAX_MODEL_BYTES = 512 * 1024 * 1024


class ModelIntegrityError(RegistryError):
    """A model file's md5 is not the one its version pins: it is never unpickled."""


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes (the hash DVC pins in dvc.lock)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_md5(git_dir: Path, version: str, commit: str) -> str:
    """The model md5 that ``dvc.lock`` pins at ``commit`` (the version ``version``)."""
    md5 = model_hash(show(git_dir, commit, PIPELINE_LOCK))
    if md5 is None:
        raise RegistryError(
            f"{ARTIFACT}@{version} (commit {commit[:12]}) pins no model in its {PIPELINE_LOCK}; "
            "choose another version"
        )
    return md5


def mismatch(path: Path, what: str, expected: str, actual: str) -> ModelIntegrityError:
    """The error for a model file whose md5 is not the pinned one."""
    return ModelIntegrityError(
        f"the model file {path} for {what} has md5 {actual}, but its version pins {expected}: "
        "the DVC cache or remote holds a corrupt or tampered copy, and it was not loaded. "
        "Push a good copy from a workspace that has it (`dvc push`), then `make redeploy`"
    )


def verified_bytes(path: Path, what: str, expected: str) -> bytes:
    """The bytes of ``path`` if their md5 is ``expected``; else ModelIntegrityError."""
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelIntegrityError(
                f"the model file {path} for {what} is {size} bytes, more than any model of "
                f"this pipeline ({MAX_MODEL_BYTES}); it was not loaded. `make redeploy`"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"the model file {path} for {what} is missing; `dvc pull` or `make redeploy`"
        ) from None
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if actual != expected:
        raise mismatch(path, what, expected, actual)
    return data


def verify_model(path: Path, what: str, expected: str) -> Path:
    """``path`` if its md5 is ``expected`` (a copy to deploy or stage); else raise."""
    actual = file_md5(path)
    if actual != expected:
        raise mismatch(path, what, expected, actual)
    return path


def load_verified(path: Path, what: str, expected: str) -> Any:
    """Unpickle the model in ``path`` after checking its bytes against ``expected``."""
    import joblib

    return joblib.load(io.BytesIO(verified_bytes(path, what, expected)))
