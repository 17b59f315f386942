"""Run ``dvc repro`` so that a failed run leaves the workspace as the last good run left it.

    python -m batchserving.core.lock python -m batchserving.core.repro evaluate

``dvc repro`` deletes a stage's outputs before it runs the stage, so a stage that fails
(a bad value in params.yaml, say) would leave the workspace without its model. On
failure this restores, with ``dvc checkout``, every output that ``dvc.lock`` still pins
(dvc.lock is only rewritten for stages that succeeded), then exits with repro's code.

DVC reads params.yaml itself before any stage runs, and expands a YAML alias bomb in it
for minutes: the file's size and structure are checked first (``read_params``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from batchserving.core.names import PARAMS_FILE
from batchserving.core.params import ParamsError, read_params


def repro_or_restore(targets: list[str], single_item: bool = False) -> int:
    """``dvc repro TARGETS``; on failure restore them and their deps; return repro's exit code.

    ``single_item`` runs only the targets, not the stages they depend on. Raise
    ParamsError, before DVC runs, when params.yaml is too large or too deep.
    """
    read_params(Path(PARAMS_FILE))
    flags = ["--single-item"] if single_item else []
    code = subprocess.run(["dvc", "repro", *flags, *targets], check=False).returncode
    if code != 0:
        print(
            f"repro: `dvc repro {' '.join(targets)}` failed (exit {code}); restoring the "
            "outputs dvc.lock pins with `dvc checkout`",
            file=sys.stderr,
            flush=True,
        )
        subprocess.run(["dvc", "checkout", "--quiet", "--with-deps", *targets], check=False)
    return code


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m batchserving.core.repro STAGE [STAGE...]")
    try:
        sys.exit(repro_or_restore(sys.argv[1:]))
    except ParamsError as exc:
        sys.exit(f"repro: {exc}; nothing was run")


if __name__ == "__main__":
    main()
