"""Competitor benchmark: direction-aware scores, ranks, gaps and a composite index.

Input: a long table ``bank, metric, value`` (the processed ``benchmark.parquet``), metrics as
defined under ``benchmark.metrics`` in study.yml (``direction`` higher/lower, ``weight``).

* **score** (0-100), min-max normalised across the banks in the table, direction-aware
  (the SQI rule of the source report): ``100 (x - min) / (max - min)`` when higher is better,
  ``100 (max - x) / (max - min)`` when lower is better; 100 for every bank when all are equal;
* **rank** per metric, 1 = best (ties share the best rank, ``method="min"``);
* for our bank (``benchmark.our_bank``): ``gap_to_best = ours - best`` and
  ``gap_to_average = ours - competitor average`` (metric units; the mean of the *other* banks),
  and ``behind_best``, the direction-aware shortfall (>= 0; 0 when we are best);
* **composite index** per bank = sum of ``weight x score`` over the metrics (weights of
  study.yml; when a bank lacks a metric the weights of the metrics it has are rescaled to 1),
  with its rank;
* **radar data**: scores, metric x bank, in study.yml order, for a radar chart.

Worked example (source digest, competitor table): average handling time, ours 5.2 min vs A 4.8,
B 6.1, C 5.0, lower is better -> score (6.1 - 5.2) / (6.1 - 4.8) x 100 = 69.2, rank 3,
gap to best +0.4 min, gap to the competitor average 5.2 - 5.3 = -0.1 min.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study.data.config import Study
from study.errors import StudyError


class BenchmarkDataError(StudyError):
    """The benchmark table cannot be scored (missing columns, unknown metric, no row for our bank)."""


def _check(data: pd.DataFrame, study: Study) -> pd.DataFrame:
    missing = [c for c in ("bank", "metric", "value") if c not in data.columns]
    if missing:
        raise BenchmarkDataError(f"benchmark data lacks column(s) {missing}; expected a long table with bank, metric, value")
    df = data[["bank", "metric", "value"]].copy()
    df["bank"] = df["bank"].astype(str)
    df["metric"] = df["metric"].astype(str)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    known = [m.id for m in study.benchmark.metrics]
    unknown = sorted(set(df["metric"]) - set(known))
    if unknown:
        raise BenchmarkDataError(f"metric(s) {unknown} are not defined under benchmark.metrics in study.yml; expected {known}")
    if df.duplicated(["bank", "metric"]).any():
        dupes = df.loc[df.duplicated(["bank", "metric"], keep=False), ["bank", "metric"]].drop_duplicates()
        raise BenchmarkDataError(f"bank and metric appear more than once: {dupes.to_dict('records')}")
    if not (df["bank"] == study.benchmark.our_bank).any():
        raise BenchmarkDataError(f"no rows for our bank '{study.benchmark.our_bank}' (benchmark.our_bank in study.yml)")
    return df.dropna(subset=["value"])


def benchmark_table(data: pd.DataFrame, study: Study) -> pd.DataFrame:
    """One row per metric x bank: value, score (0-100), rank; gaps filled on our bank's rows."""
    df = _check(data, study)
    ours = study.benchmark.our_bank
    rows = []
    for m in study.benchmark.metrics:
        sub = df[df["metric"] == m.id].copy()
        if sub.empty:
            continue
        lo, hi = sub["value"].min(), sub["value"].max()
        higher = m.direction == "higher"
        if hi == lo:
            sub["score"] = 100.0
        else:
            sub["score"] = 100.0 * (((sub["value"] - lo) if higher else (hi - sub["value"])) / (hi - lo))
        sub["rank"] = sub["value"].rank(ascending=not higher, method="min").astype(int)
        best = hi if higher else lo
        sub["best_value"] = best
        others = sub.loc[sub["bank"] != ours, "value"]
        sub["competitor_average"] = others.mean() if len(others) else np.nan
        sub["gap_to_best"] = np.nan
        sub["gap_to_average"] = np.nan
        sub["behind_best"] = np.nan
        is_ours = sub["bank"] == ours
        sub.loc[is_ours, "gap_to_best"] = sub.loc[is_ours, "value"] - best
        sub.loc[is_ours, "gap_to_average"] = sub.loc[is_ours, "value"] - sub["competitor_average"]
        sub.loc[is_ours, "behind_best"] = ((best - sub.loc[is_ours, "value"]) if higher else (sub.loc[is_ours, "value"] - best))
        sub["direction"] = m.direction
        sub["unit"] = m.unit
        sub["weight"] = m.weight
        sub["n_banks"] = len(sub)
        rows.append(sub)
    out = pd.concat(rows, ignore_index=True)
    return out[["metric", "bank", "value", "unit", "direction", "weight", "score", "rank", "n_banks", "best_value",
                "competitor_average", "gap_to_best", "gap_to_average", "behind_best"]]


def composite_index(data: pd.DataFrame, study: Study, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Composite benchmark index (0-100) per bank: weighted mean of the metric scores, with rank."""
    t = table if table is not None else benchmark_table(data, study)
    t = t.assign(ws=t["weight"] * t["score"])
    g = t.groupby("bank", sort=False).agg(weighted=("ws", "sum"), weight=("weight", "sum"), metrics=("metric", "count"))
    out = pd.DataFrame({"bank": g.index, "composite_index": (g["weighted"] / g["weight"]).to_numpy(),
                        "metrics_used": g["metrics"].to_numpy()})
    out["rank"] = out["composite_index"].rank(ascending=False, method="min").astype(int)
    out["is_our_bank"] = out["bank"] == study.benchmark.our_bank
    return out.sort_values(["rank", "bank"]).reset_index(drop=True)


def radar_data(data: pd.DataFrame, study: Study, table: pd.DataFrame | None = None, lang: str = "en") -> pd.DataFrame:
    """Scores (0-100) as metric x bank, metrics in study.yml order, our bank first; index = metric labels."""
    t = table if table is not None else benchmark_table(data, study)
    wide = t.pivot(index="metric", columns="bank", values="score")
    order = [m.id for m in study.benchmark.metrics if m.id in wide.index]
    ours = study.benchmark.our_bank
    banks = [ours] + sorted(b for b in wide.columns if b != ours)
    wide = wide.loc[order, [b for b in banks if b in wide.columns]]
    wide.index = [study.label(m, lang) for m in order]
    wide.index.name = "metric"
    wide.columns.name = None
    return wide
