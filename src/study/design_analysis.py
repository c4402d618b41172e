"""The report's bank-wide survey figures on the sampling design, and the history of every quarter.

Statistics layer on top of :mod:`study.design` and :mod:`study.trend` for a report
:class:`study.analysis.Context`; no prose, no formatting.

The rule the report follows (:data:`RULE`): where the study declares its sampling design
(study.yml ``sampling``), every bank-wide survey figure (headline, satisfaction summary, dimension
scores, targets, the driver importance and the performance axis of the IPA) is design-based —
weighted, with Taylor-linearised intervals and design-based tests; without a declared design the
figures are unweighted, as a simple random sample. Figures within one stratum (one branch when the
strata are branches) are the same either way. Both are kept side by side for the methods appendix
(:func:`weighting_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from study import config, design, io, trend
from study import metrics as mx

__all__ = ["RULE", "uses_design", "estimates", "weighting_table", "headline", "summary", "dimensions", "targets",
           "lmg_weights", "history"]

RULE = "design-based when study.yml declares sampling, unweighted otherwise"
DESIGN_TEST = "design_t"    # the design-based t test of two independent samples (R svyttest)
SURVEY_METRICS = set(mx.SURVEY_METRIC_IDS)


def uses_design(ctx) -> bool:
    return ctx.study.sampling is not None


def estimates(ctx, quarter_data) -> pd.DataFrame:
    """:func:`study.design.estimates` of one quarter of the context (cached per run)."""
    q = quarter_data

    def compute():
        return design.estimates(q.survey, ctx.study, q.quarter, process_times=q.process_times, level=ctx.level)
    return ctx.once(f"design-estimates-{q.quarter}", compute)


def _built(ctx, q):
    ind = design.indicator_frame(q.survey, ctx.study)
    return design.build(pd.concat([q.survey, ind.add_prefix("m__")], axis=1), ctx.study, q.quarter,
                        process_times=q.process_times)


def _changes(ctx) -> pd.DataFrame:
    """Baseline → current change of every survey metric on the design (cached)."""
    def compute():
        a, b = _built(ctx, ctx.baseline), _built(ctx, ctx.current)
        cols = [c[3:] for c in a.frame.columns if c.startswith("m__")]
        rows = [{"metric": m} | design.compare_samples(a, b, f"m__{m}", level=ctx.level) for m in cols]
        return pd.DataFrame(rows).set_index("metric")
    return ctx.once("design-changes", compute)


def weighting_table(ctx) -> pd.DataFrame:
    """Weighted and unweighted estimates side by side for the current quarter: one row per metric with
    estimate, interval, unweighted, its interval, difference (weighted − unweighted), deff, n, n_eff."""
    e = estimates(ctx, ctx.current).copy()
    e["difference"] = e["estimate"] - e["unweighted"]
    return e.reset_index()


def headline(ctx, out: pd.DataFrame) -> pd.DataFrame:
    """Replace the survey rows of the headline with design-based values when the study declares a design."""
    if not uses_design(ctx) or out.empty:
        return out
    out = out.copy()
    cur = estimates(ctx, ctx.current)
    ch = _changes(ctx) if ctx.baseline is not None else None
    for i, r in out.iterrows():
        m = r["metric"]
        if m not in SURVEY_METRICS or m not in cur.index:
            continue
        out.loc[i, "current"] = cur.loc[m, "estimate"]
        out.loc[i, "n_after"] = cur.loc[m, "n"]
        if ch is not None and m in ch.index and "baseline" in out.columns and pd.notna(r.get("baseline")):
            c = ch.loc[m]
            upd = {"baseline": c["before"], "current": c["after"], "change": c["difference"], "ci_low": c["ci_low"],
                   "ci_high": c["ci_high"], "test": DESIGN_TEST, "statistic": c["t"], "df": c["df"], "p": c["p"],
                   "effect_size": np.nan, "effect_size_name": ""}
            for k, v in upd.items():
                if k in out.columns:
                    out.loc[i, k] = v
    return out


def summary(ctx, out: pd.DataFrame) -> pd.DataFrame:
    """Design-based values and intervals in the satisfaction summary (rows metric × quarter)."""
    if not uses_design(ctx) or out.empty:
        return out
    out = out.copy()
    by_q = {q.quarter: estimates(ctx, q) for q in ctx.quarters}
    for i, r in out.iterrows():
        e = by_q.get(r["quarter"])
        if e is not None and r["metric"] in e.index:
            out.loc[i, ["value", "ci_low", "ci_high"]] = e.loc[r["metric"], ["estimate", "ci_low", "ci_high"]].to_numpy(float)
    out["weighted"] = True
    return out


def dimensions(ctx, out: pd.DataFrame) -> pd.DataFrame:
    """Design-based dimension scores, baseline scores and changes (p before Holm's adjustment)."""
    if not uses_design(ctx) or out.empty:
        return out
    out = out.copy()
    cur = estimates(ctx, ctx.current)
    ch = _changes(ctx) if ctx.baseline is not None else None
    for i, r in out.iterrows():
        d = r["dimension"]
        out.loc[i, ["score", "ci_low", "ci_high"]] = cur.loc[d, ["estimate", "ci_low", "ci_high"]].to_numpy(float)
        if ch is not None and "change" in out.columns:
            c = ch.loc[d]
            out.loc[i, ["baseline", "change", "change_ci_low", "change_ci_high", "p"]] = [
                c["before"], c["difference"], c["ci_low"], c["ci_high"], c["p"]]
            if "g" in out.columns:
                out.loc[i, "g"] = np.nan
    return out


def targets(ctx, out: pd.DataFrame) -> pd.DataFrame:
    """Design-based observed values and intervals for the survey targets (level and change; a relative
    change by the delta method on the log ratio of the two design-based estimates)."""
    if not uses_design(ctx) or out.empty:
        return out
    out = out.copy()
    cur = estimates(ctx, ctx.current)
    base = estimates(ctx, ctx.baseline) if ctx.baseline is not None else None
    ch = _changes(ctx) if ctx.baseline is not None else None
    z = float(stats.norm.ppf(0.5 + ctx.level / 2))
    for i, r in out.iterrows():
        m = r["metric"]
        if m not in cur.index or r["status"] in ("not measured", "no baseline"):
            continue
        if r["kind"] == "level":
            obs, lo, hi = cur.loc[m, ["estimate", "ci_low", "ci_high"]]
        elif r["kind"] == "change" and ch is not None:
            obs, lo, hi = ch.loc[m, ["difference", "ci_low", "ci_high"]]
        elif r["kind"] == "relative_change" and base is not None:
            ma, sa, mb, sb = cur.loc[m, "estimate"], cur.loc[m, "se"], base.loc[m, "estimate"], base.loc[m, "se"]
            if not (ma > 0 and mb > 0):
                continue
            sl = np.hypot(sa / ma, sb / mb)
            obs, lo, hi = ma / mb - 1, np.exp(np.log(ma / mb) - z * sl) - 1, np.exp(np.log(ma / mb) + z * sl) - 1
        else:
            continue
        v = r["target_value"]
        if r["operator"] == ">=":
            status = "met" if lo >= v else "not met" if hi < v else "not distinguishable"
        else:
            status = "met" if hi <= v else "not met" if lo > v else "not distinguishable"
        out.loc[i, ["observed", "ci_low", "ci_high"]] = [obs, lo, hi]
        out.loc[i, "status"] = status
    return out


def sqi(ctx, quarter_data, table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The SQI's bank-wide row ("all") with its survey indicators design-based (branch rows are one
    stratum each and stay as they are)."""
    if not uses_design(ctx) or table is None or "all" not in table.index:
        return table
    return _sqi_all(ctx.study, estimates(ctx, quarter_data), table)


def _sqi_all(study, est: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    from study import scores

    ind_cols = [s.id for s in study.sqi]
    survey_ids = [s.id for s in study.sqi if s.source == "survey" and s.id in est.index]
    if not survey_ids:
        return table
    ind = table.loc[["all"], ind_cols].astype(float).copy()
    for i in survey_ids:
        ind.loc["all", i] = est.loc[i, "estimate"]
    res = scores.sqi(ind, scores.sqi_spec(study))
    table = table.copy()
    for c in ind_cols:
        table.loc["all", c] = ind.loc["all", c]
    for c in res.columns:
        if c in table.columns:
            table.loc["all", c] = res.loc["all", c]
    return table


def _sqi_per_quarter(study, surveys, process, per_quarter: pd.DataFrame) -> pd.DataFrame:
    """SQI (0-100) of every quarter that supplies all its sources, survey indicators on the design."""
    from study import scores

    if not study.sqi:
        return per_quarter
    rows = []
    for q in sorted(surveys):
        need_process = any(s.source == "process" for s in study.sqi)
        if need_process and process.get(q) is None:
            continue
        table = scores.study_sqi(surveys[q], process.get(q), study, by=None)
        est = per_quarter[per_quarter["quarter"] == q].set_index("metric")
        if study.sampling is not None:
            table = _sqi_all(study, est, table)
        v = table.loc["all", "sqi"] if "all" in table.index else np.nan
        if pd.notna(v):
            rows.append({"quarter": q, "metric": "sqi", "source": "index", "kind": "index", "estimate": float(v) * 100,
                         "se": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": est["n"].max() if len(est) else np.nan,
                         "weighted": study.sampling is not None})
    return pd.concat([per_quarter, pd.DataFrame(rows)], ignore_index=True) if rows else per_quarter


def lmg_weights(ctx, data: pd.DataFrame) -> dict:
    """Keyword arguments for :func:`study.drivers.relative_importance` on the design (weights and strata
    aligned with ``data``'s rows, which index the current survey), or {} without a design."""
    if not uses_design(ctx):
        return {}
    f = design.build(ctx.current.survey, ctx.study, ctx.quarter, process_times=ctx.current.process_times).frame
    f.index = ctx.current.survey.index
    data["_weight"] = f.loc[data.index, "_weight"].to_numpy()
    data["_stratum"] = f.loc[data.index, "_stratum"].to_numpy() if "_stratum" in f else "all"
    return {"weights": "_weight", "strata": "_stratum"}


def weighted_performance(ctx, data: pd.DataFrame, columns) -> pd.Series:
    """Mean of ``columns`` (design-weighted when ``data`` carries the design weight)."""
    if "_weight" not in data:
        return data[list(columns)].mean()
    w = data["_weight"].to_numpy(float)
    return pd.Series({c: float(np.average(data[c].to_numpy(float), weights=w)) for c in columns})


def history(ctx) -> dict | None:
    """Every processed quarter up to the current one: per-quarter estimates, consecutive changes (Holm),
    slopes (three or more quarters), monthly statistics, control charts and target progress (see
    :mod:`study.trend`). None when only the current quarter exists."""
    def compute():
        data_dir = ctx.current.directory.parent.parent
        qs = [q for q in config.quarter_dirs(data_dir, "processed") if q <= ctx.quarter
              and (io.processed_dir(data_dir, q) / "manifest.json").exists()]
        if len(qs) < 2:
            return None
        loaded = {q: (ctx.current if q == ctx.quarter else ctx.baseline if ctx.baseline is not None and q == ctx.baseline_quarter
                      else io.load_quarter(data_dir, q)) for q in qs}
        surveys = {q: d.survey for q, d in loaded.items()}
        process = {q: d.process_times for q, d in loaded.items()}
        per_quarter = _sqi_per_quarter(ctx.study, surveys, process, trend.quarterly(surveys, ctx.study, process, level=ctx.level))
        months = trend.monthly(surveys, ctx.study, process)
        tr = ctx.study.tracking
        # months with fewer respondents than min_cell_size are neither charted nor judged (small groups suppressed)
        hidden = trend.small_months(months, ctx.study.min_cell_size)
        charted = months[~(months["month"].isin(hidden) & ~months["metric"].isin(trend.PROCESS_MEANS))]
        charts = trend.control_charts(charted, tuple(tr.chart_baseline) if tr is not None else None)
        changes = trend.changes(surveys, ctx.study, process, level=ctx.level, per_quarter=per_quarter)
        return {"quarters": qs, "per_quarter": per_quarter, "changes": changes,
                "slopes": trend.slopes(per_quarter, level=ctx.level), "monthly": months, "charts": charts,
                "suppressed_months": sorted(hidden),
                "targets": trend.target_progress(per_quarter, ctx.study)}
    return ctx.once("history", compute)
