"""Tracking across quarters: per-quarter estimates, changes, trend, control charts, target progress.

DataFrames in, results out; no prose, no formatting. The quarters are whatever the caller passes
(every quarter present): one quarter gives levels only, two a change and no trend, three or more
a trend.

- Per quarter, every bank-wide survey metric on the quarter's design (:func:`study.stats.design.estimates`:
  design-based with the study's ``sampling``, simple-random-sample otherwise), and the queue log's
  waiting and handling time (mean with a t interval over the quarter's tickets) where a quarter has
  a queue log.
- Changes between consecutive quarters: the design-based t test of two independent samples
  (:func:`study.stats.design.compare_samples`, R ``svyttest`` on the stacked design); p-values adjusted by
  Holm (1979) over the consecutive comparisons of each metric — the toolkit's correction for a
  family of tests (the methods appendix).
- Trend: the least-squares slope of the quarterly estimates on the quarter number,
  ``b = Σ c_q y_q`` with ``c_q = (q − q̄) / Σ (q − q̄)²``; the quarters are independent samples, so
  ``Var(b) = Σ c_q² se_q²`` (no residual term: the slope of the estimates, whose population
  counterpart is the slope of the true quarterly values); normal interval and p.
- Control charts of monthly values (Montgomery, *Introduction to Statistical Quality Control*,
  ch. 6-7): a p-chart for shares (``p̄ ± 3 √(p̄(1 − p̄)/n_i)``), an X-bar chart for survey means
  with the month's respondents as the subgroup (``x̿ ± 3 σ̂/√n_i``, σ̂ the pooled within-month SD),
  and an individuals chart for the queue log's monthly means (``x̄ ± 3 MR̄/1.128``). Limits come from
  the months of the study's ``tracking.chart_baseline`` quarters (Phase I: months outside the limits
  are set aside and the limits recomputed until the set is stable). Every month from the first
  baseline month on that lies outside its limits is flagged; earlier months are shown but not judged
  against limits of a later period.
  With the study's sampling design (``weights``), a survey month's value is the weighted mean with each
  quarter's design weights, and the limits rest on the weighted values: the centre is the weighted
  mean of the baseline months (``Σ w y / Σ w``), and a month's subgroup size is its effective sample
  size ``n_eff = (Σ w)² / Σ w²`` (Kish) in place of its respondents — ``p̄ ± 3 √(p̄(1 − p̄)/n_eff,i)``
  and ``x̿ ± 3 σ̂/√n_eff,i`` with σ̂ the pooled weighted within-month SD. Kish's n_eff takes the
  weights' unequal sizes into account but not the gain from stratifying, so the limits are, if
  anything, a little wide. Without a design the values are unweighted.
- Progress towards each target per quarter: the estimate (for a change target, the change from the
  report's baseline quarter in every later quarter), its interval and the verdict (met when the whole
  interval is on the target's side, not met when it is wholly on the other, undecided otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from study import metrics as mx
from study.stats import design as dz

__all__ = ["quarterly", "changes", "slopes", "monthly", "control_charts", "target_progress", "PROCESS_MEANS"]

PROCESS_MEANS = ("waiting_minutes", "handling_minutes")
# The monthly series a control chart watches: the bank-wide headline metrics (dimension scores are
# tracked per quarter, not charted month by month).
CHARTED = ("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2, "complaint_rate") + PROCESS_MEANS
MAX_PHASE_I_ROUNDS = 10


def quarterly(surveys: Mapping[str, pd.DataFrame], study, process: Mapping[str, pd.DataFrame | None] | None = None,
              level: float = 0.95) -> pd.DataFrame:
    """One row per (quarter, metric): estimate, se, ci_low, ci_high, n, deff, weighted, source."""
    process = process or {}
    rows = []
    for q in sorted(surveys):
        est = dz.estimates(surveys[q], study, q, process_times=process.get(q), level=level)
        for metric, r in est.iterrows():
            rows.append({"quarter": q, "metric": metric, "source": "survey"} | r.to_dict())
        t = process.get(q)
        if t is None:
            continue
        for metric in PROCESS_MEANS:
            if metric not in t:
                continue
            y = pd.to_numeric(t[metric], errors="coerce").dropna()
            n = len(y)
            m = float(y.mean()) if n else np.nan
            se = float(y.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            half = stats.t.ppf(0.5 + level / 2, n - 1) * se if n > 1 else np.nan
            rows.append({"quarter": q, "metric": metric, "source": "process", "kind": "duration", "weighted": False,
                         "n": n, "estimate": m, "se": se, "ci_low": m - half, "ci_high": m + half, "deff": np.nan,
                         "n_eff": np.nan, "df": n - 1})
    return pd.DataFrame(rows)


def changes(surveys: Mapping[str, pd.DataFrame], study, process: Mapping[str, pd.DataFrame | None] | None = None,
            level: float = 0.95, per_quarter: pd.DataFrame | None = None) -> pd.DataFrame:
    """Consecutive-quarter changes of every survey metric (and process mean): one row per (metric,
    before, after) with the difference, se, t, df, p, interval and ``p_holm`` (Holm over the
    consecutive comparisons of the metric). Empty with fewer than two quarters. ``per_quarter``: the
    result of :func:`quarterly` when already computed (the comparison needs only each quarter's
    estimate, se and df)."""
    qs = sorted(surveys)
    if len(qs) < 2:
        return pd.DataFrame(columns=["metric", "before", "after", "difference", "se", "t", "df", "p", "ci_low", "ci_high", "p_holm"])
    process = process or {}
    if per_quarter is None:
        per_quarter = quarterly(surveys, study, process, level=level)
    est = {q: g.set_index("metric") for q, g in per_quarter[per_quarter["source"] == "survey"].groupby("quarter")}
    rows = []
    for a, b in zip(qs, qs[1:]):
        ea, eb = est[a], est[b]
        for metric in [m for m in ea.index if m in eb.index]:
            r = dz.compare_estimates(ea.loc[metric], eb.loc[metric], bool(ea.loc[metric, "weighted"] or eb.loc[metric, "weighted"]),
                                     level=level)
            rows.append({"metric": metric, "before": a, "after": b} | {k: r[k] for k in
                        ("difference", "se", "t", "df", "p", "ci_low", "ci_high")})
        ta, tb = process.get(a), process.get(b)
        if ta is not None and tb is not None:
            for metric in PROCESS_MEANS:
                if metric in ta and metric in tb:
                    x, y = ta[metric].dropna().astype(float), tb[metric].dropna().astype(float)
                    res = stats.ttest_ind(y, x, equal_var=False)
                    ci = res.confidence_interval(level)
                    diff = float(y.mean() - x.mean())
                    rows.append({"metric": metric, "before": a, "after": b, "difference": diff,
                                 "se": float(np.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))),
                                 "t": float(res.statistic), "df": float(res.df), "p": float(res.pvalue),
                                 "ci_low": float(ci.low), "ci_high": float(ci.high)})
    out = pd.DataFrame(rows)
    out["p_holm"] = np.nan
    for idx in out.groupby("metric").groups.values():
        p = out.loc[idx, "p"].to_numpy(float)
        ok = np.isfinite(p)
        adj = np.full(len(p), np.nan)
        if ok.any():
            adj[ok] = holm(p[ok])
        out.loc[idx, "p_holm"] = adj
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values: :func:`study.stats.effects.holm` (vectorised; statsmodels'
    ``multipletests`` runs a full ``gc.collect()`` on every call, 0.36 s per metric here)."""
    from study.stats.effects import holm as _holm

    return _holm(p)


def _quarter_number(q: str) -> int:
    return int(q[:4]) * 4 + int(q[-1]) - 1


def slopes(per_quarter: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Trend per metric over the quarters it has (three or more): slope per quarter, se, interval, z,
    p, quarters, first, last (see the module docstring). Empty when no metric has three quarters."""
    rows = []
    z = stats.norm.ppf(0.5 + level / 2)
    for metric, g in per_quarter.dropna(subset=["estimate", "se"]).groupby("metric", sort=False):
        if len(g) < 3:
            continue
        x = np.array([_quarter_number(q) for q in g["quarter"]], float)
        c = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
        b = float(c @ g["estimate"].to_numpy(float))
        se = float(np.sqrt((c ** 2 * g["se"].to_numpy(float) ** 2).sum()))
        zz = b / se if se > 0 else np.nan
        rows.append({"metric": metric, "quarters": len(g), "first": g["quarter"].min(), "last": g["quarter"].max(),
                     "slope": b, "se": se, "ci_low": b - z * se, "ci_high": b + z * se, "z": zz,
                     "p": float(2 * stats.norm.sf(abs(zz))) if np.isfinite(zz) else np.nan})
    return pd.DataFrame(rows, columns=["metric", "quarters", "first", "last", "slope", "se", "ci_low", "ci_high", "z", "p"])


def monthly(surveys: Mapping[str, pd.DataFrame], study, process: Mapping[str, pd.DataFrame | None] | None = None,
            indicators: Mapping[str, pd.DataFrame] | None = None,
            weights: Mapping[str, pd.Series] | None = None) -> pd.DataFrame:
    """Monthly statistics (the documents' rhythm): one row per (month, metric) with n, value (mean or
    share), sd (of the individual values) and count (for shares: how many 1s). Survey metrics by the
    interview month; the queue log's waiting and handling time by the month a ticket was issued.
    ``indicators``: :func:`study.stats.design.indicator_frame` per quarter, when already computed.
    ``weights``: each quarter's design weights (indexed like its survey; the study's sampling design):
    then a survey month's value is the weighted mean, sd the weighted SD (``√(Σ w (y − ȳ_w)² / Σ w ·
    n/(n − 1))``), ``wsum`` = Σ w and ``n_eff`` = (Σ w)² / Σ w² (NaN without weights)."""
    rows = []
    reg = mx.registry(study)
    for q in sorted(surveys):
        s = surveys[q]
        ind = indicators[q] if indicators is not None and q in indicators else dz.indicator_frame(s, study)
        month = pd.to_datetime(s["interview_date"]).dt.strftime("%Y-%m")
        w_q = weights.get(q) if weights is not None else None
        for metric in ind.columns:
            kind = reg[metric].kind if metric in reg else "score"
            for m, y in ind[metric].groupby(month):
                y = y.dropna()
                n = len(y)
                row = {"month": m, "quarter": q, "metric": metric, "kind": kind, "n": n,
                       "value": float(y.mean()) if n else np.nan, "sd": float(y.std(ddof=1)) if n > 1 else np.nan,
                       "count": float(y.sum()) if kind == "share" else np.nan, "wsum": np.nan, "n_eff": np.nan}
                if w_q is not None and n:
                    w = w_q.loc[y.index].to_numpy(float)
                    v = y.to_numpy(float)
                    W = w.sum()
                    mean = float((w * v).sum() / W)
                    row.update(value=mean, wsum=float(W), n_eff=float(W ** 2 / (w ** 2).sum()),
                               sd=float(np.sqrt((w * (v - mean) ** 2).sum() / W * n / (n - 1))) if n > 1 else np.nan,
                               count=mean * n if kind == "share" else np.nan)
                rows.append(row)
    for q, t in sorted((process or {}).items()):
        if t is None or "issued_at" not in t:
            continue
        month = pd.to_datetime(t["issued_at"]).dt.strftime("%Y-%m")
        for metric in PROCESS_MEANS:
            if metric not in t:
                continue
            for m, y in t[metric].groupby(month):
                y = y.dropna().astype(float)
                rows.append({"month": m, "quarter": q, "metric": metric, "kind": "duration", "n": len(y),
                             "value": float(y.mean()) if len(y) else np.nan,
                             "sd": float(y.std(ddof=1)) if len(y) > 1 else np.nan, "count": np.nan,
                             "wsum": np.nan, "n_eff": np.nan})
    return pd.DataFrame(rows, columns=["month", "quarter", "metric", "kind", "n", "value", "sd", "count", "wsum", "n_eff"])


def _limits(g: pd.DataFrame, chart: str, base: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    b = g[base]
    if chart in ("p", "xbar") and "wsum" in g and g["wsum"].notna().all():   # weighted values (module docstring)
        centre = float((b["value"] * b["wsum"]).sum() / b["wsum"].sum())
        if chart == "p":
            sigma = np.sqrt(centre * (1 - centre))
        else:
            sigma = float(np.sqrt(((b["n"] - 1) * b["sd"] ** 2).sum() / (b["n"] - 1).sum()))
        half = 3 * sigma / np.sqrt(g["n_eff"].to_numpy(float))
        return centre, centre - half, centre + half
    if chart == "p":
        centre = float(b["count"].sum() / b["n"].sum())
        half = 3 * np.sqrt(centre * (1 - centre) / g["n"].to_numpy(float))
    elif chart == "xbar":
        centre = float((b["value"] * b["n"]).sum() / b["n"].sum())
        sigma = float(np.sqrt(((b["n"] - 1) * b["sd"] ** 2).sum() / (b["n"] - 1).sum()))
        half = 3 * sigma / np.sqrt(g["n"].to_numpy(float))
    else:   # individuals: σ̂ = mean moving range of consecutive baseline months / d2 (1.128)
        centre = float(b["value"].mean())
        mr = np.abs(np.diff(b["value"].to_numpy(float)))
        half = np.full(len(g), 3 * (mr.mean() / 1.128 if len(mr) else np.nan))
    return centre, centre - half, centre + half


def control_charts(month_table: pd.DataFrame, baseline: tuple[str, str] | None, study=None) -> pd.DataFrame:
    """Control chart of each headline monthly series (:data:`CHARTED`): one row per (metric, month) with chart (p / xbar /
    individuals), value, n, centre, lcl, ucl, in_baseline, used (a baseline month the limits rest
    on after Phase I), out_of_control and side (above / below). ``baseline``: first and last quarter
    of the limits' period (``tracking.chart_baseline``). A series with fewer than two baseline months
    gets no limits (NaN) and no flags. Months before the baseline period are not judged."""
    cols = ["metric", "month", "quarter", "chart", "value", "n", "centre", "lcl", "ucl", "in_baseline", "used",
            "out_of_control", "side"]
    if month_table.empty or baseline is None:
        return pd.DataFrame(columns=cols)
    lo, hi = baseline
    out = []
    for metric, g in month_table.sort_values("month").groupby("metric", sort=False):
        if metric not in CHARTED:
            continue
        g = g[g["n"] > 0].reset_index(drop=True)
        kind = g["kind"].iloc[0]
        chart = "p" if kind == "share" else "individuals" if kind == "duration" else "xbar"
        in_base = ((g["quarter"] >= lo) & (g["quarter"] <= hi)).to_numpy()
        used = in_base.copy()
        centre, lcl, ucl = np.nan, np.full(len(g), np.nan), np.full(len(g), np.nan)
        for _ in range(MAX_PHASE_I_ROUNDS):
            if used.sum() < 2:
                centre, lcl, ucl = np.nan, np.full(len(g), np.nan), np.full(len(g), np.nan)
                break
            centre, lcl, ucl = _limits(g, chart, used)
            outside = (g["value"].to_numpy(float) < lcl) | (g["value"].to_numpy(float) > ucl)
            keep = in_base & ~outside
            if (keep == used).all():
                break
            used = keep
        v = g["value"].to_numpy(float)
        judged = g["month"].to_numpy() >= (g.loc[in_base, "month"].min() if in_base.any() else "")
        ooc = judged & np.isfinite(lcl) & ((v < lcl) | (v > ucl))
        side = np.where(ooc & (v < lcl), "below", np.where(ooc, "above", ""))
        out.append(pd.DataFrame({"metric": metric, "month": g["month"], "quarter": g["quarter"], "chart": chart,
                                 "value": v, "n": g["n"], "centre": centre, "lcl": lcl, "ucl": ucl,
                                 "in_baseline": in_base, "used": used, "out_of_control": ooc, "side": side}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)


def target_progress(per_quarter: pd.DataFrame, study, baseline: str | None = None, level: float = 0.95) -> pd.DataFrame:
    """Each target of the study per quarter: estimate, interval, target value, verdict (met / not met /
    undecided, from the interval; "not tested" without one).

    Level targets: the quarter's estimate. Change targets ("against the baseline"): for every quarter
    after ``baseline`` (the report's baseline quarter), the change from the baseline — the difference
    with the interval of the two independent samples' t test (:func:`study.stats.design.compare_estimates`:
    design-based with the study's sampling, Welch otherwise), or for a relative change the ratio − 1
    with the delta-method interval on the log ratio (normal), as the targets chapter judges the current
    quarter. Without a baseline, change targets have no rows. Columns: target, metric, kind, quarter,
    baseline, estimate, ci_low, ci_high, operator, value, verdict."""
    cols = ["target", "metric", "kind", "quarter", "baseline", "estimate", "ci_low", "ci_high", "operator", "value", "verdict"]
    rows = []
    z = float(stats.norm.ppf(0.5 + level / 2))
    for t in study.targets:
        g = per_quarter[per_quarter["metric"] == t.metric]
        if t.kind == "level":
            pairs = [(r, None) for _, r in g.iterrows()]
        else:
            if baseline is None or not (g["quarter"] == baseline).any():
                continue
            b = g[g["quarter"] == baseline].iloc[0]
            pairs = [(r, b) for _, r in g[g["quarter"] > baseline].iterrows()]
        for r, b in pairs:
            if b is None:
                est, lo, hi = r["estimate"], r["ci_low"], r["ci_high"]
            elif t.kind == "change":
                c = dz.compare_estimates(b, r, bool(r.get("weighted", False) or b.get("weighted", False)), level=level)
                est, lo, hi = c["difference"], c["ci_low"], c["ci_high"]
            else:
                ma, sa, mb, sb = r["estimate"], r["se"], b["estimate"], b["se"]
                if not (ma > 0 and mb > 0):
                    est, lo, hi = (ma / mb - 1 if mb > 0 else np.nan), np.nan, np.nan
                else:
                    sl = np.hypot(sa / ma, sb / mb)
                    est, lo, hi = ma / mb - 1, np.exp(np.log(ma / mb) - z * sl) - 1, np.exp(np.log(ma / mb) + z * sl) - 1
            good_lo, good_hi = (lo >= t.value, hi < t.value) if t.operator == ">=" else (hi <= t.value, lo > t.value)
            verdict = "met" if good_lo else "not met" if good_hi else "undecided"
            if not (np.isfinite(lo) and np.isfinite(hi)):
                verdict = "not tested"
            rows.append({"target": t.id, "metric": t.metric, "kind": t.kind, "quarter": r["quarter"],
                         "baseline": None if b is None else baseline, "estimate": est, "ci_low": lo, "ci_high": hi,
                         "operator": t.operator, "value": t.value, "verdict": verdict})
    return pd.DataFrame(rows, columns=cols)

def small_months(month_table: pd.DataFrame, min_n: int) -> set[str]:
    """Months whose survey figures must not be shown (the study's ``min_cell_size``): those with fewer respondents,
    and, in the same quarter, the fewest-respondent other months until the hidden months together reach
    ``min_n`` (complementary suppression: a quarter's unweighted figure minus the months shown would give a
    single hidden month back). Process months (queue tickets) are not about respondents and never hidden.
    A weighted month whose effective size (Kish ``n_eff``) is below 2 is hidden too: one respondent's weight
    outweighs the rest, so its weighted value is that respondent's answer, and no limit can judge it."""
    s = month_table[~month_table["metric"].isin(PROCESS_MEANS)]
    if s.empty:
        return set()
    n = s.groupby(["quarter", "month"])["n"].max()
    neff = (s.groupby(["quarter", "month"])["n_eff"].min() if "n_eff" in s else pd.Series(np.nan, index=n.index))
    hidden: set[str] = set()
    for q, g in n.groupby(level="quarter"):
        g = g.droplevel("quarter").sort_values(kind="stable")
        e = neff.xs(q, level="quarter").reindex(g.index)
        small = g[(g < min_n) | (e < 2).to_numpy()]
        if small.empty:
            continue
        hide = list(small.index)
        rest = [m for m in g.index if m not in hide]
        while rest and (len(hide) < 2 or g[hide].sum() < min_n):   # never one month alone beside its quarter's total
            hide.append(rest.pop(0))
        hidden.update(hide)
    return hidden
