"""Progress bars for the long steps (tqdm), quiet when nobody is watching.

A bar is drawn on stderr only when stderr is a terminal (tqdm's ``disable=None``): running
``python -m study report`` or ``study bench`` in a shell shows one; a notebook kernel, the test
suite, CI and a redirected log show nothing. ``TQDM_DISABLE=1`` turns every bar off (tqdm reads
``TQDM_*`` variables as defaults). Used for bootstraps, the notebooks of a report run, large
generated logs and the benchmarks' scans.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str | None = None,
        unit: str = "it", disable: bool | None = None, **kw: Any):
    """A tqdm bar on stderr that disappears when done; ``disable=None``: only on a terminal."""
    from tqdm import tqdm

    kw.setdefault("leave", False)
    kw.setdefault("dynamic_ncols", True)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr, **kw)
