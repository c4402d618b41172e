"""Benchmark: the process-time chapter at bank scale (1M, 10M, 100M tickets) and against pandas.

For each size a log is generated once with :func:`study.sample.log.write_process_log` (half in
2025Q1, half in 2025Q2, so the interrupted time series has weeks before and after the smart-queue
start) under ``/tmp/study-bench/<size>/`` and reused when present. The whole chapter
(:func:`study.stats.process.process_chapter`: summaries by business type, branch, channel, hour and
week; saturation; staffing; Little's law; weekly series and ITS) runs in a fresh child process
with DuckDB threads=2, memory_limit=4GB and a temp directory; the child reports its wall time
and its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). The chapter is one
streaming pass: DuckDB decodes the needed Parquet columns (string ids already as small codes) into
Arrow batches and numpy counts them into exact one-second histograms and the branch x date x hour
cube in two threads. On 10M tickets (quick: 1M) the same aggregates are computed in plain pandas
(load the Parquet log, groupby) in another child process, and the ratio is reported.

Targets (issue 5): 100M tickets in <= 60 s with < 6 GB peak; >= 10x faster than pandas on 10M.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from study.progress import bar

BENCH_DIR = Path(os.environ.get("STUDY_BENCH_DIR", "/tmp/study-bench"))
SIZES = {"1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000}
QUARTERS = ("2025Q1", "2025Q2")
DUCKDB_SETTINGS = {"threads": 2, "memory_limit": "4GB"}


def ensure_log(label: str, n: int) -> Path:
    """Generate (once) a log of ``n`` tickets over two quarters; return its data dir."""
    from study.data.config import load_study
    from study.sample.log import write_process_log

    root = BENCH_DIR / label
    marker = root / f".complete-{n}"
    if not marker.exists():
        study = load_study()
        t0 = time.perf_counter()
        for i, q in enumerate(QUARTERS):
            write_process_log(study, root, q, n // len(QUARTERS) + (i < n % len(QUARTERS)), seed=i,
                              workers=2)
        (root / ".generate-seconds").write_text(f"{time.perf_counter() - t0:.3f}")
        marker.write_text("ok")
    return root


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_DUCKDB_CHILD = r"""
import json, resource, time
from study.data.config import load_study
from study.stats import process
study = load_study()
t0 = time.perf_counter()
out = process.process_chapter({src!r}, study, threads={threads}, memory_limit={mem!r}, temp_directory={tmp!r})
secs = time.perf_counter() - t0
its = out["its"]
pilot = its[(its.metric == "waiting_minutes") & (its.group == "pilot")]["relative_level_change"]
print(json.dumps({{"seconds": secs, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "tables": len(out), "its_pilot_waiting": float(pilot.iloc[0]) if len(pilot) else None}}))
"""

_PANDAS_CHILD = r"""
import json, resource, time, glob
import numpy as np, pandas as pd
from study.data.config import load_study
study = load_study()
t0 = time.perf_counter()
files = sorted(glob.glob({src!r} + "/**/*.parquet", recursive=True))
cols = ["branch_id", "business_type", "counter_id", "channel", "issued_at", "called_at", "first_pass",
        "waiting_minutes", "handling_minutes", "cycle_minutes"]
df = pd.concat([pd.read_parquet(f, columns=cols) for f in files], ignore_index=True)
df["hour"] = df["issued_at"].dt.hour
df["date"] = df["issued_at"].dt.normalize()
df["week"] = df["date"] - pd.to_timedelta(df["date"].dt.weekday, unit="D")
target = study.service_level.waiting_target_minutes
df["within"] = (df["waiting_minutes"] <= target).astype(float)
df["fp"] = df["first_pass"].astype(float)
res = {{}}
for by in ["business_type", "branch_id", "channel", "hour", "week"]:
    g = df.groupby(by, observed=True)
    parts = [g.size().rename("n")]
    for m in ["waiting_minutes", "handling_minutes", "cycle_minutes"]:
        parts += [g[m].mean().rename(m + "_mean"), g[m].median().rename(m + "_median"),
                  g[m].quantile(0.9).rename(m + "_p90"), g[m].quantile(0.95).rename(m + "_p95")]
    parts += [g["within"].mean(), g["fp"].mean()]
    res[by] = pd.concat(parts, axis=1)
# branch x date x hour cube: workload, distinct counters, Little's-law grid, weekly series
oh = study.service_level.opening_hours
a, b = oh.open * 60, oh.close * 60
iss = (df["issued_at"] - df["date"]).dt.total_seconds() / 60
cal = (df["called_at"] - df["called_at"].dt.normalize()).dt.total_seconds() / 60
df["grid"] = np.maximum(0, np.ceil(cal.clip(a, b)) - np.ceil(iss.clip(a, b)))
cube = df.groupby(["branch_id", "date", "hour"], observed=True).agg(
    tickets=("waiting_minutes", "size"), hs=("handling_minutes", "sum"), ws=("waiting_minutes", "sum"),
    cs=("cycle_minutes", "sum"), sl=("within", "sum"), fp=("fp", "sum"), counters=("counter_id", "nunique"),
    grid=("grid", "sum")).reset_index()
days = cube.groupby("branch_id")["date"].nunique()
sat = cube.groupby(["branch_id", "hour"]).agg(hs=("hs", "sum"), n=("tickets", "sum"), used=("counters", "mean"))
m = study.measures[0]
grp = np.where(df["branch_id"].isin(m.pilot), "pilot", np.where(df["branch_id"].isin(m.control), "control", "other"))
weekly = df.groupby([grp, "week"])[["waiting_minutes", "cycle_minutes"]].mean()
secs = time.perf_counter() - t0
print(json.dumps({{"seconds": secs, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def run_duckdb(label: str) -> dict:
    root = BENCH_DIR / label
    tmp = BENCH_DIR / "duckdb-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return _child(_DUCKDB_CHILD.format(src=str(root / "processed"), threads=DUCKDB_SETTINGS["threads"],
                                       mem=DUCKDB_SETTINGS["memory_limit"], tmp=str(tmp)))


def run_pandas(label: str) -> dict:
    return _child(_PANDAS_CHILD.format(src=str(BENCH_DIR / label / "processed")))


def run(quick: bool = False) -> pd.DataFrame:
    labels = ["1M"] if quick else ["1M", "10M", "100M"]
    compare = "1M" if quick else "10M"
    rows = []
    timings: dict[str, float] = {}
    # generating, scanning with DuckDB (and once with pandas): minutes at 100M; a bar on a terminal
    steps = bar(total=2 * len(labels) + 1, desc="process benchmark", unit="step")
    for label in labels:
        n = SIZES[label]
        t0 = time.perf_counter()
        steps.set_postfix_str(f"generating {label} tickets")
        root = ensure_log(label, n)
        steps.update()
        steps.set_postfix_str(f"scanning {label} tickets (DuckDB)")
        gen_file = root / ".generate-seconds"
        gen = float(gen_file.read_text()) if gen_file.exists() else time.perf_counter() - t0
        rows.append({"figure": f"generate {label} tickets (2 workers)", "value": round(gen, 2), "unit": "s",
                     "note": f"{n / gen / 1e6:.2f} M tickets/s; {_du(root) / 1e9:.2f} GB Parquet"})
        r = run_duckdb(label)
        steps.update()
        timings[label] = r["seconds"]
        growth = ""
        prev = {"10M": "1M", "100M": "10M"}.get(label)
        if prev in timings:
            growth = f"; x{r['seconds'] / timings[prev]:.1f} the time of {prev}"
        rows.append({"figure": f"process chapter, {label} tickets (DuckDB + numpy)", "value": round(r["seconds"], 2),
                     "unit": "s", "note": f"{n / r['seconds'] / 1e6:.1f} M tickets/s{growth}; ITS pilot waiting "
                     f"{r['its_pilot_waiting']:+.1%}" + ("; target <= 60 s" if label == "100M" else "")})
        rows.append({"figure": f"peak memory, {label} tickets (DuckDB + numpy)", "value": round(r["peak_kb"] / 1e6, 2),
                     "unit": "GB", "note": "ru_maxrss of the child process" + ("; target < 6 GB" if label == "100M" else "")})
        if label == compare:
            steps.set_postfix_str(f"scanning {label} tickets (pandas)")
            p = run_pandas(label)
            steps.update()
            rows.append({"figure": f"process chapter, {label} tickets (pandas)", "value": round(p["seconds"], 2),
                         "unit": "s", "note": f"peak {p['peak_kb'] / 1e6:.2f} GB"})
            rows.append({"figure": f"speed-up vs pandas ({label})", "value": round(p["seconds"] / r["seconds"], 1),
                         "unit": "x", "note": "pandas seconds / chapter seconds, same run; target >= 10x on 10M"})
    steps.close()
    return pd.DataFrame(rows, columns=["figure", "value", "unit", "note"])


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet"))


if __name__ == "__main__":  # pragma: no cover
    print(run(quick="--quick" in sys.argv).to_string(index=False))
