"""Child processes that die with their parent. A killed run (``kill -9`` included) must not
leave an extraction worker writing Parquet or a dbt process holding the warehouse: on Linux
each child asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``).
No heavy imports here: ``ntsb-dbt`` starts through this module before every dbt command."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies; exit now if it has died already."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(137)


def dbt_main() -> None:
    """``ntsb-dbt``: this environment's dbt, killed when the process that started it dies."""
    die_with_parent()
    dbt = str(Path(sys.executable).with_name("dbt"))
    os.execv(dbt, [dbt, *sys.argv[1:]])
