"""Benchmark: the request chapter (contact centre, AI assistant, complaints) at the documents' scale.

Digest §4: an AI assistant answering more than 100,000 enquiries a day, i.e. about 10 million requests a
quarter. A log of that size (quick: 1M) is generated once with
:func:`study.sample.requests.write_request_log` under ``/tmp/study-bench/requests-<size>/`` and reused.
The whole chapter (:func:`study.stats.requests.request_chapter`: volume by channel, the 7x24 heatmap, first-response
and resolution percentiles by channel and by handler with the 24 h share, complaints by grade with deadlines,
complaints per million visits, AI containment and handoff overall and by channel, the rating AI vs human)
runs in a fresh child process with DuckDB threads=2, memory_limit=4GB; the child reports its wall time and
peak resident memory (``ru_maxrss``). The same aggregates are then computed in plain pandas (read the
Parquet log, groupby, numpy quantiles) in another child, and the ratio is reported.

Issue 12: "a quarter of 10 million requests must run in the same order of time and memory as 10 million
tickets" (the process chapter on 10M tickets: see ``study.bench.process``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from study.bench.process import BENCH_DIR, DUCKDB_SETTINGS, _child, _du

SIZES = {"1M": 1_000_000, "10M": 10_000_000}
QUARTER = "2025Q2"


def ensure_log(label: str, n: int) -> Path:
    """Generate (once) a request log of ``n`` requests; return its folder."""
    from study.data.config import load_study
    from study.sample.requests import write_request_log

    root = BENCH_DIR / f"requests-{label}"
    marker = root / f".complete-{n}"
    if not marker.exists():
        t0 = time.perf_counter()
        write_request_log(load_study(), root, QUARTER, n, seed=1)
        (root / ".generate-seconds").write_text(f"{time.perf_counter() - t0:.3f}")
        marker.write_text("ok")
    return root / "processed" / QUARTER / "service_requests"


# Both children import what their timed part uses before the clock starts (statsmodels, scipy, the effects
# module), so the figures compare the aggregates, not import times.
_DUCKDB_CHILD = r"""
import json, resource, time
import statsmodels.stats.proportion, statsmodels.stats.rates
from study.data.config import load_study
from study.stats import requests, effects
study = load_study()
t0 = time.perf_counter()
out = requests.request_chapter({src!r}, study, {quarter!r}, queue_tickets=40000, threads={threads}, memory_limit={mem!r},
                               temp_directory={tmp!r})
secs = time.perf_counter() - t0
print(json.dumps({{"seconds": secs, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "containment": float(out["ai"]["containment"].iloc[0]),
                  "p90_all": float(out["times_by_channel"]["first_response_p90"].iloc[-1])}}))
"""

_PANDAS_CHILD = r"""
import json, resource, time
import statsmodels.stats.proportion, statsmodels.stats.rates
import numpy as np, pandas as pd
from study.data.config import load_study
from study.stats.effects import compare
from study.stats.requests import wilson
study = load_study()
t0 = time.perf_counter()
df = pd.read_parquet({src!r}, columns=["channel", "received_at", "resolved_at", "handled_by", "escalated", "complaint_grade",
                                       "resolved_first_contact", "post_contact_rating", "first_response_minutes",
                                       "resolution_minutes"])
for c in ("channel", "handled_by", "complaint_grade"):
    df[c] = df[c].astype(str).where(df[c].notna())
df["ai_started"] = (df["handled_by"] == "ai") | df["escalated"]
df["is_complaint"] = df["complaint_grade"].notna()
vol = df.groupby("channel").agg(n=("channel", "size"), ai_started=("ai_started", "sum"), complaints=("is_complaint", "sum"))
heat = df.groupby([df["received_at"].dt.weekday, df["received_at"].dt.hour]).size()
df["within"] = df["first_response_minutes"] <= 24 * 60
df["fcr"] = df["resolved_first_contact"].astype(float)
def times(by):
    g = df.groupby(by)
    parts = [g.size().rename("n"), g["within"].sum(), g["fcr"].mean()]
    for m in ("first_response_minutes", "resolution_minutes"):
        parts += [g[m].count(), g[m].mean(), g[m].quantile(0.5), g[m].quantile(0.9), g[m].quantile(0.95)]
    return pd.concat(parts, axis=1)
t_ch, t_h = times("channel"), times("handled_by")
allrow = [df[m].quantile([0.5, 0.9, 0.95]) for m in ("first_response_minutes", "resolution_minutes")]
dl = {{g.id: g.deadline_hours * 60 for g in study.service_requests.complaint_grades}}
c = df[df["is_complaint"]].copy()
c["within_deadline"] = c["resolution_minutes"] <= c["complaint_grade"].map(dl)
comp = c.groupby("complaint_grade").agg(n=("within_deadline", "size"), w=("within_deadline", "sum"),
                                        med=("resolution_minutes", "median"))
ai = df[df["ai_started"]]
contained = (ai["handled_by"] == "ai") & ai["resolved_at"].notna()
rates = [wilson(int(contained.sum()), len(ai)), wilson(int(ai["escalated"].sum()), len(ai))]
by_ch = ai.assign(contained=contained).groupby("channel").agg(n=("contained", "size"), c=("contained", "sum"), e=("escalated", "sum"))
r = df.dropna(subset=["post_contact_rating"])
res = compare(r.loc[r["handled_by"] == "human", "post_contact_rating"].to_numpy(), r.loc[r["handled_by"] == "ai", "post_contact_rating"].to_numpy())
secs = time.perf_counter() - t0
print(json.dumps({{"seconds": secs, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "containment": rates[0][0]}}))
"""


def run(quick: bool = False) -> pd.DataFrame:
    labels = ["1M"] if quick else ["1M", "10M"]
    rows = []
    tmp = BENCH_DIR / "duckdb-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for label in labels:
        n = SIZES[label]
        src = ensure_log(label, n)
        gen = float((src.parents[2] / ".generate-seconds").read_text())
        rows.append({"figure": f"generate {label} requests", "value": round(gen, 2), "unit": "s",
                     "note": f"{_du(src) / 1e9:.2f} GB Parquet"})
        r = _child(_DUCKDB_CHILD.format(src=str(src), quarter=QUARTER, threads=DUCKDB_SETTINGS["threads"],
                                        mem=DUCKDB_SETTINGS["memory_limit"], tmp=str(tmp)))
        rows.append({"figure": f"request chapter, {label} requests (DuckDB)", "value": round(r["seconds"], 2), "unit": "s",
                     "note": f"{n / r['seconds'] / 1e6:.1f} M requests/s; containment {r['containment']:.3f}"})
        rows.append({"figure": f"peak memory, {label} requests (DuckDB)", "value": round(r["peak_kb"] / 1e6, 2), "unit": "GB",
                     "note": "ru_maxrss of the child process"})
        p = _child(_PANDAS_CHILD.format(src=str(src)))
        rows.append({"figure": f"same aggregates, {label} requests (pandas)", "value": round(p["seconds"], 2), "unit": "s",
                     "note": f"peak {p['peak_kb'] / 1e6:.2f} GB; containment {p['containment']:.3f}"})
        rows.append({"figure": f"speed-up vs pandas ({label})", "value": round(p["seconds"] / r["seconds"], 1), "unit": "x",
                     "note": "pandas seconds / chapter seconds, same run"})
        if label == labels[-1]:
            # the yardstick of issue 12: the process chapter on as many tickets, in the same run
            from study.bench import process as bp

            bp.ensure_log(label, n)
            t = bp.run_duckdb(label)
            rows.append({"figure": f"process chapter, {label} tickets (same run)", "value": round(t["seconds"], 2), "unit": "s",
                         "note": f"peak {t['peak_kb'] / 1e6:.2f} GB; request chapter / process chapter "
                                 f"{r['seconds'] / t['seconds']:.2f}x time, {r['peak_kb'] / t['peak_kb']:.2f}x memory"})
    return pd.DataFrame(rows, columns=["figure", "value", "unit", "note"])


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(run(quick="--quick" in sys.argv).to_string(index=False))
