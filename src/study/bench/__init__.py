"""Performance benchmarks (``make bench`` / ``python -m study bench``); not part of the tests.

Each module here has ``run(quick: bool = False) -> pandas.DataFrame`` and measures one of the
figures the issues set (speed against pingouin / pandas / R, peak memory). Timings are noisy on
a shared machine: read the ratios, measured in one run, rather than the absolute seconds.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("reliability", "drivers", "process", "requests")


def main(quick: bool = False, only: list[str] | None = None) -> int:
    import pandas as pd

    names = only or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 80):
        for name in names:
            try:
                module = importlib.import_module(f"study.bench.{name}")
            except ModuleNotFoundError:
                print(f"== {name}: not available yet\n")
                continue
            print(f"== {name}{' (quick)' if quick else ''}", flush=True)
            print(module.run(quick=quick).to_string(index=False), flush=True)
            print(flush=True)
    return 0
