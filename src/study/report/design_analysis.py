"""The report's bank-wide survey figures on the sampling design, and the history of every quarter.

Statistics layer on top of :mod:`study.stats.design` and :mod:`study.stats.trend` for a report
:class:`study.report.analysis.Context`; no prose, no formatting.

The rule the report follows (:data:`RULE`): where the study declares its sampling design
(study.yml ``sampling``), every bank-wide survey figure (headline, satisfaction summary, dimension
scores, targets, the driver regression, the driver importance and the performance axis of the IPA, the
effects chapter's survey comparisons) is design-based —
weighted, with Taylor-linearised intervals and design-based tests; without a declared design the
figures are unweighted, as a simple random sample. Figures within one stratum (one branch when the
strata are branches) are the same either way. Both are kept side by side for the methods appendix
(:func:`weighting_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from study import metrics as mx
from study.data import config, io
from study.stats import design, trend

__all__ = ["RULE", "uses_design", "estimates", "weighting_table", "headline", "summary", "dimensions", "targets",
           "lmg_weights", "driver_model", "effects", "pilot_control", "history"]

RULE = "design-based when study.yml declares sampling, unweighted otherwise"
DESIGN_TEST = "design_t"    # the design-based t test of two independent samples (R svyttest)
SURVEY_METRICS = set(mx.SURVEY_METRIC_IDS)


def uses_design(ctx) -> bool:
    return ctx.study.sampling is not None


def estimates(ctx, quarter_data) -> pd.DataFrame:
    """:func:`study.stats.design.estimates` of one quarter of the context (cached per run)."""
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
    from study.stats import scores

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
    from study.stats import scores

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
    """Keyword arguments for :func:`study.stats.drivers.relative_importance` on the design (weights and strata
    aligned with ``data``'s rows, which index the current survey), or {} without a design."""
    if not uses_design(ctx):
        return {}
    f = design.build(ctx.current.survey, ctx.study, ctx.quarter, process_times=ctx.current.process_times).frame
    f.index = ctx.current.survey.index
    data["_weight"] = f.loc[data.index, "_weight"].to_numpy()
    data["_stratum"] = f.loc[data.index, "_stratum"].to_numpy() if "_stratum" in f else "all"
    return {"weights": "_weight", "strata": "_stratum"}


def driver_model(ctx, model, scores: pd.DataFrame, outcome: str, predictors: list[str]):
    """The driver regression on the design (R ``svyglm(outcome ~ dimensions, design)``) when the study
    declares one, else ``model`` unchanged.

    ``model``: the unweighted :class:`study.stats.drivers.DriverModel` of the same rows; ``scores``: the
    current quarter's :func:`study.report.analysis.scores_frame` (indexed like its survey). Coefficients,
    standard errors (Taylor-linearised with strata and fpc), t on the design's residual df, p and
    intervals come from :func:`study.stats.design.regression`; respondents with a missing answer leave the
    fit but not the design. R² is the weighted one, the F test the design-based Wald test of all
    dimensions (``regTermTest``), β uses weighted standard deviations. The VIFs (a property of the
    answers, not an estimate) and the residual diagnostics stay those of the unweighted fit, which
    the methods appendix shows beside it; ``fit["cov_type"]`` is ``"design"``."""
    if not uses_design(ctx):
        return model
    import dataclasses

    q = ctx.current
    names = {c: f"r__{i}" for i, c in enumerate([outcome, *predictors])}
    frame = pd.concat([q.survey, scores[[outcome, *predictors]].rename(columns=names)], axis=1)
    d = design.build(frame, ctx.study, q.quarter, process_times=q.process_times)
    fit = design.regression(d, names[outcome], [names[p] for p in predictors], level=ctx.level)
    st = fit.attrs["fit"]
    terms = model.terms.copy()
    rows = ["const" if t == "(Intercept)" else names[t] for t in terms["term"]]
    for col in ("coef", "se", "t", "p", "ci_low", "ci_high", "df"):
        terms[col] = fit.loc[rows, col].to_numpy(float)
    ok = d.frame[list(names.values())].notna().all(axis=1)
    w = d.frame.loc[ok, "_weight"].to_numpy(float)

    def wsd(col):
        x = d.frame.loc[ok, col].to_numpy(float)
        return float(np.sqrt(np.average((x - np.average(x, weights=w)) ** 2, weights=w)))
    sd_y = wsd(names[outcome])
    terms["beta_std"] = [np.nan if t == "(Intercept)" else c * wsd(names[t]) / sd_y for t, c in zip(terms["term"], terms["coef"])]
    n, k = st["n"], st["k"]
    f = model.fit.copy()
    f.update(pd.Series({"n": n, "r2": st["r2"], "adj_r2": 1 - (1 - st["r2"]) * (n - 1) / (n - k - 1), "f": st["f"],
                        "f_df1": st["f_df1"], "f_df2": st["f_df2"], "f_p": st["f_p"], "f_robust": st["f"],
                        "f_robust_p": st["f_p"]}))
    f["cov_type"] = "design"
    return dataclasses.replace(model, terms=terms, fit=f)


def _stacked_metric(ctx, measure, window, metric: str):
    """The baseline and current quarters' designs stacked (:func:`study.stats.design.stack`, strata nested in the
    quarters), with the metric's per-respondent value ``did__y`` (NPS as +100/0/−100 points), ``did__treated``
    (pilot 1), ``did__post`` (on/after the window's split) and ``did__in`` (pilot or control branch). None when a
    quarter has no survey."""
    from study.stats import effects as eff

    kind = eff.metric_kind(metric, ctx.study)
    parts = {}
    for q in [x for x in (ctx.baseline, ctx.current) if x is not None]:
        if q.survey is None:
            return None
        v = eff.metric_values(ctx.study, {"survey": q.survey}, metric)
        b = v["branch_id"].astype(str)
        cols = pd.DataFrame({"did__y": eff._did_value(kind, v["value"]).to_numpy(float),
                             "did__treated": b.isin(measure.pilot).astype(float).to_numpy(),
                             "did__post": (pd.to_datetime(v["date"]) >= pd.Timestamp(window["split"])).astype(float).to_numpy(),
                             "did__in": (b.isin(measure.pilot) | b.isin(measure.control)).to_numpy()}, index=q.survey.index)
        parts[q.quarter] = design.build(pd.concat([q.survey, cols], axis=1), ctx.study, q.quarter, process_times=q.process_times)
    return design.stack(parts, label="did__quarter") if any(p.weighted for p in parts.values()) else None


def effects(ctx, ev: pd.DataFrame) -> pd.DataFrame:
    """The effects table (:func:`study.report.analysis.effects`) with every survey metric on the design when the
    study declares one: before/after in the pilot and in the control branches as the design-based t test on
    the two quarters' stacked design with the group's branches as a domain (R ``svyttest(y ~ after,
    subset(design, group))``, test ``design_t``), and the difference-in-differences (:func:`study.stats.design.did`: svyglm of the metric on
    treated × post over the stacked quarters' design, strata nested in the quarters, each respondent with
    its quarter's weight; test ``did_design``; why strata and not branch clusters: its docstring). The
    unweighted DiD's estimate, interval and p stay beside it in ``unweighted_*`` columns (the methods
    appendix shows both); its pre-trend test is kept (a check of the data, not an estimate). Holm and BH
    adjusted p, significance, power and MDE are recomputed. A survey DiD the unweighted analysis skipped
    for too few branches (its clustered variance needs three) runs on the design, whose variance does not
    rest on the number of branches. Process metrics (the queue log: every ticket, a census) keep their
    unweighted DiD."""
    from study.stats import effects as eff

    if not uses_design(ctx) or ev is None or ev.empty:
        return ev
    ev = ev.copy()
    for col in ("unweighted_estimate", "unweighted_ci_low", "unweighted_ci_high", "unweighted_p"):
        ev[col] = np.nan
    measures = {m.id: m for m in ctx.study.measures}
    stacked_of: dict = {}

    def stacked_for(m, metric):
        if (m.id, metric) not in stacked_of:
            stacked_of[(m.id, metric)] = _stacked_metric(ctx, m, eff.measure_window(m, ctx.baseline_quarter, ctx.quarter),
                                                         metric)
        return stacked_of[(m.id, metric)]

    # before/after in the pilot and in the control branches: svyttest(y ~ after) on the stacked design, the group's
    # branches as a domain
    ba = ev.index[ev["analysis"].isin(["pilot before/after", "control before/after"]) & ev["skipped"].eq("")
                  & ev["metric"].isin(SURVEY_METRICS | set(ctx.study.dimension_ids))]
    for i in ba:
        r = ev.loc[i]
        stacked = stacked_for(measures[r["measure"]], r["metric"])
        if stacked is None:
            continue
        f = stacked.frame
        treated = 1.0 if r["analysis"] == "pilot before/after" else 0.0
        f["did__group"] = f["did__in"] & (f["did__treated"] == treated) & f["did__y"].notna()
        g = f[f["did__group"]]
        if g["did__post"].nunique() != 2:
            continue
        c = design.compare_domains(stacked, "did__y", "did__post", level=ctx.level, domain="did__group")
        means = {k: float(np.average(x["did__y"], weights=x["_weight"])) for k, x in g.groupby("did__post")}
        for col, v in (("unweighted_estimate", r["estimate"]), ("unweighted_ci_low", r["ci_low"]),
                       ("unweighted_ci_high", r["ci_high"]), ("unweighted_p", r["p_used"])):
            ev.loc[i, col] = v
        ev.loc[i, ["estimate", "ci_low", "ci_high", "statistic", "df", "p", "se", "before_value", "after_value",
                   "effect_size", "effect_ci_low", "effect_ci_high"]] = [
            c["difference"], c["ci_low"], c["ci_high"], c["t"], c["df"], c["p"], c["se"], means[0.0], means[1.0],
            np.nan, np.nan, np.nan]
        ev.loc[i, ["test", "rule", "effect_size_name"]] = [DESIGN_TEST, "", ""]
        ev.loc[i, "assumption_notes"] = f"design-based t test on the stacked quarters' design (svyttest), t({c['df']:g})"
    # the unweighted DiD needs three branches for its clustered variance; the design's does not (it is the sampling
    # error of the comparison), so a survey DiD skipped for too few branches runs on the design
    few = ev["skipped"].fillna("").str.endswith("clustered inference needs at least 3 units")
    rows = ev.index[(ev["analysis"] == "difference-in-differences") & (ev["skipped"].eq("") | few)
                    & ev["metric"].isin(SURVEY_METRICS | set(ctx.study.dimension_ids))]
    for i in rows:
        r = ev.loc[i]
        m = measures[r["measure"]]
        stacked = stacked_for(m, r["metric"])
        if stacked is None:
            continue
        d = design.did(stacked, "did__y", treated="did__treated", post="did__post", domain="did__in", level=ctx.level)
        ev.loc[i, ["unweighted_estimate", "unweighted_ci_low", "unweighted_ci_high", "unweighted_p"]] = [
            r["estimate"], r["ci_low"], r["ci_high"], r["p_used"]]
        if not np.isfinite(d["p"]):
            continue   # a cell without respondents: the unweighted DiD could not have run either
        ev.loc[i, ["estimate", "ci_low", "ci_high", "se", "statistic", "df", "p", "boot_p", "n_boot"]] = [
            d["estimate"], d["ci_low"], d["ci_high"], d["se"], d["t"], d["df"], d["p"], np.nan, 0]
        ev.loc[i, ["before_value", "after_value"]] = [d["pilot_before"] - d["control_before"],
                                                      d["pilot_after"] - d["control_after"]]
        ev.loc[i, "test"] = "did_design"
        ev.loc[i, "boot_weights"] = ""
        if r["skipped"]:
            ev.loc[i, ["skipped", "rule", "effect_size_name"]] = ["", "", ""]
            ev.loc[i, ["n_clusters", "n_before", "n_after"]] = [
                int(stacked.frame.loc[stacked.frame["did__in"], "branch_id"].nunique()),
                int(((stacked.frame["did__post"] == 0) & stacked.frame["did__in"] & stacked.frame["did__y"].notna()).sum()),
                int(((stacked.frame["did__post"] == 1) & stacked.frame["did__in"] & stacked.frame["did__y"].notna()).sum())]
        ev.loc[i, "assumption_notes"] = (f"design-based SE on the stacked quarters' design ({d['n_strata']} strata, "
                                         f"svyglm), t({d['df']:g})")
    ran = ev["skipped"].eq("")
    ev["p_used"] = np.where(ev["test"].eq("did_wild_bootstrap"), ev["boot_p"], ev["p"]).astype(float)
    for _, idx in ev[ran].groupby(["measure", "analysis"]).groups.items():
        ev.loc[idx, "p_holm"] = eff.adjust_p(ev.loc[idx, "p_used"], "holm")
        ev.loc[idx, "p_bh"] = eff.adjust_p(ev.loc[idx, "p_used"], "bh")
    ev.loc[~ran, ["p_holm", "p_bh"]] = np.nan
    ev["significant"] = ev["p_holm"] < ctx.study.alpha
    for i in ev.index[ev["test"].isin(["did_design", DESIGN_TEST])]:
        ev.loc[i, "power"], ev.loc[i, "mde"] = eff.power_mde(ev.loc[i], alpha=ctx.study.alpha)
    return ev


_PILOT_CONTROL = ["measure", "metric", "pilot", "control", "difference", "ci_low", "ci_high", "t", "df", "p", "n_pilot",
                  "n_control"]


def pilot_control(ctx) -> pd.DataFrame:
    """Pilot against control branches after each measure's start, in the current quarter's design (R
    ``svyttest(y ~ group, subset(design, after the start and in the pilot or control branches))``): one row
    per measure with control branches and survey metric — measure, metric, pilot, control (weighted means),
    difference (pilot − control), ci_low, ci_high, t, df, p. Empty without a design. A comparison of levels,
    not an effect: the pilot branches may have differed before (the DiD takes that out)."""
    from study.stats import effects as eff

    if not uses_design(ctx) or ctx.current.survey is None:
        return pd.DataFrame(columns=_PILOT_CONTROL)
    rows = []
    q = ctx.current
    base = design.build(q.survey, ctx.study, q.quarter, process_times=q.process_times)
    for m in ctx.study.measures:
        w = eff.measure_window(m, ctx.baseline_quarter, ctx.quarter)
        if not m.control or w["status"] not in ("introduced", "sustained"):
            continue
        for metric in m.metrics:
            if metric not in SURVEY_METRICS and metric not in ctx.study.dimension_ids:
                continue
            v = eff.metric_values(ctx.study, {"survey": q.survey}, metric)
            f = base.frame.copy()
            f["d__y"] = eff._did_value(eff.metric_kind(metric, ctx.study), v["value"]).to_numpy(float)
            b = v["branch_id"].astype(str)
            f["d__group"] = np.where(b.isin(m.pilot), "pilot", np.where(b.isin(m.control), "control", "other"))
            f["d__in"] = ((f["d__group"] != "other") & (pd.to_datetime(v["date"]) >= pd.Timestamp(w["split"])).to_numpy()
                        & f["d__y"].notna())
            counts = f.loc[f["d__in"], "d__group"].value_counts()
            # small groups: a side with fewer respondents than min_cell_size is not compared (its mean would be shown)
            if min(counts.get("pilot", 0), counts.get("control", 0)) < max(2, ctx.study.min_cell_size):
                continue
            dd = design.Design(f, weighted=base.weighted, strata=base.strata, fpc=base.fpc, rake=base.rake)
            r = design.compare_domains(dd, "d__y", "d__group", level=ctx.level, domain="d__in")
            g = f[f["d__in"]]
            means = {k: float(np.average(x["d__y"], weights=x["_weight"])) for k, x in g.groupby("d__group")}
            # compare_domains: second − first in sorted order = pilot − control
            rows.append({"measure": m.id, "metric": metric, "pilot": means["pilot"], "control": means["control"],
                         "difference": r["difference"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "t": r["t"],
                         "df": r["df"], "p": r["p"], "n_pilot": int(counts["pilot"]), "n_control": int(counts["control"])})
    return pd.DataFrame(rows, columns=_PILOT_CONTROL)


def weighted_performance(ctx, data: pd.DataFrame, columns) -> pd.Series:
    """Mean of ``columns`` (design-weighted when ``data`` carries the design weight)."""
    if "_weight" not in data:
        return data[list(columns)].mean()
    w = data["_weight"].to_numpy(float)
    return pd.Series({c: float(np.average(data[c].to_numpy(float), weights=w)) for c in columns})


def history(ctx) -> dict | None:
    """Every processed quarter up to the current one: per-quarter estimates, consecutive changes (Holm),
    slopes (three or more quarters), monthly statistics, control charts and target progress (see
    :mod:`study.stats.trend`). None when only the current quarter exists."""
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
        weights = None
        if uses_design(ctx):   # weighted monthly values with each quarter's design weights
            weights = {q: pd.Series(design.build(d.survey, ctx.study, q, process_times=d.process_times).frame["_weight"].to_numpy(),
                                    index=d.survey.index) for q, d in loaded.items()}
        months = trend.monthly(surveys, ctx.study, process, weights=weights)
        tr = ctx.study.tracking
        # months with fewer respondents than min_cell_size are neither charted nor judged (small groups suppressed)
        hidden = trend.small_months(months, ctx.study.min_cell_size)
        charted = months[~(months["month"].isin(hidden) & ~months["metric"].isin(trend.PROCESS_MEANS))]
        charts = trend.control_charts(charted, tuple(tr.chart_baseline) if tr is not None else None)
        changes = trend.changes(surveys, ctx.study, process, level=ctx.level, per_quarter=per_quarter)
        return {"quarters": qs, "per_quarter": per_quarter, "changes": changes,
                "slopes": trend.slopes(per_quarter, level=ctx.level), "monthly": months, "charts": charts,
                "suppressed_months": sorted(hidden),
                "targets": trend.target_progress(per_quarter, ctx.study, baseline=ctx.baseline_quarter, level=ctx.level)}
    return ctx.once("history", compute)
