"""Result tables formatted for reading: the frames the report shows, with labels and units.

Each function takes a result of :mod:`study.analysis` and returns a DataFrame of strings (numbers
formatted APA-style by :mod:`study.present`) whose column names are the headers a reviewer reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import metrics as mx
from study import present as P
from study.analysis import Context
from study.config import Study

TICK, CROSS = "✓", "✗"
GROUPING_LABELS = {"branch_id": "Branch", "segment": "Segment", "channel": "Channel"}
OPERATORS = {">=": "≥", "<=": "≤"}
TEST_NAMES = {"welch": "Welch t", "student": "Student t", "mann_whitney": "Mann–Whitney U", "paired_t": "paired t",
              "wilcoxon": "Wilcoxon signed-rank", "two_proportion": "two-proportion χ²", "nps": "NPS z",
              "did_cluster": "DiD, cluster SE", "did_wild_bootstrap": "DiD, wild bootstrap"}


def _ok(v) -> str:
    return P.DASH if v is None or (isinstance(v, float) and np.isnan(v)) else (TICK if bool(v) else CROSS)


def value(metric: str, x, study=None, unit: bool = False) -> str:
    """A metric's value as the registry says it is written: shares as per cent, minutes with one decimal
    (``unit=True`` adds " min"), scores with one decimal from 10 up, means on a short scale with two."""
    if x is None or pd.isna(x):
        return P.DASH
    m = mx.lookup(metric, study)
    if m.style == "pct":
        return P.fmt_pct(x)
    if m.style == "min":
        return P.fmt_num(x, 1) + (" min" if unit else "")
    if m.kind in ("score", "nps", "index", "mean"):
        return P.fmt_num(x, m.digits)
    return P.fmt_num(x, 1 if abs(x) >= 10 else 2)


def change(metric: str, x, study=None, unit: bool = False) -> str:
    """A change of a metric: percentage points for shares, signed numbers otherwise."""
    if x is None or pd.isna(x):
        return P.DASH
    m = mx.lookup(metric, study)
    if m.style == "pct":
        return P.fmt_pp(x)
    return P.fmt_num(x, 2 if abs(x) < 10 else 1, sign=True) + (" min" if unit and m.style == "min" else "")


def ci(metric: str, lo, hi, study=None) -> str:
    if lo is None or pd.isna(lo):
        return P.DASH
    if mx.lookup(metric, study).style == "pct":
        return f"[{P.fmt_pp(lo)}, {P.fmt_pp(hi)}]"
    return f"[{P.fmt_num(lo, 2, sign=False)}, {P.fmt_num(hi, 2)}]"


STAT_SYMBOL = {"welch": "t", "student": "t", "paired_t": "t", "two_proportion": "chi2", "nps": "z",
               "mann_whitney": "W", "wilcoxon": "V", "design_t": "t"}


def test_text(row: dict) -> str:
    """The headline test in APA style, e.g. "t(1480.9) = −0.25, p = .802"."""
    if row.get("test") is None or pd.isna(row.get("p", np.nan)):
        return P.DASH
    sym = STAT_SYMBOL.get(row["test"], "statistic")
    df = row.get("df")
    return P.fmt_test({"statistic": row["statistic"], "stat_name": sym, "df": None if df is None or pd.isna(df) else df,
                       "p": row["p"]})


def headline(ctx: Context, head: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in head.to_dict("records"):
        m = r["metric"]
        name = r["label"] + (" (min)" if mx.lookup(m, ctx.study).style == "min" and "(min)" not in r["label"] else "")
        rows.append({"Figure": name, ctx.baseline_quarter or "baseline": value(m, r.get("baseline"), ctx.study),
                     ctx.quarter: value(m, r.get("current"), ctx.study), "Change": change(m, r.get("change"), ctx.study),
                     f"{ctx.level_pct} CI": ci(m, r.get("ci_low"), r.get("ci_high"), ctx.study),
                     "Test": test_text(r) if m != "sqi" else "composite index, not tested",
                     "Verdict": r.get("verdict", P.DASH)})
    out = pd.DataFrame(rows)
    if ctx.baseline is None:
        out = out.drop(columns=["baseline", "Change", f"{ctx.level_pct} CI", "Test", "Verdict"], errors="ignore")
    return out


def targets(ctx: Context, t: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in t.to_dict("records"):
        m = r["metric"]
        if r["kind"] == "relative_change":
            fmt = lambda x: P.fmt_pct(x, sign=True)  # noqa: E731
        elif r["kind"] == "change":   # a difference: percentage points for shares, signed otherwise
            fmt = lambda x: change(m, x, ctx.study)  # noqa: E731, B023 - used in this iteration
        else:
            fmt = lambda x: value(m, x, ctx.study)  # noqa: E731, B023 - used in this iteration
        rows.append({"Target": r["label"], "Observed": fmt(r["observed"]),
                     f"{ctx.level_pct} CI": P.DASH if pd.isna(r["ci_low"]) else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]",
                     "Threshold": f"{OPERATORS.get(r['operator'], r['operator'])} {fmt(r['target_value'])}",
                     "Status": r["status"]})
    return pd.DataFrame(rows)


def reliability(study: Study, scales: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in scales.to_dict("records"):
        rows.append({"Dimension": study.label(r["scale"]), "n": P.fmt_int(r["n"]), "Items": int(r["k"]),
                     "α": P.fmt_num(r["alpha"], 2, leading_zero=False),
                     "α 95 % CI": P.fmt_ci(r["alpha_ci_low"], r["alpha_ci_high"], 2, leading_zero=False).replace("95 % CI ", ""),
                     "ω": P.fmt_num(r["omega_total"], 2, leading_zero=False),
                     "CR": P.fmt_num(r["cr"], 2, leading_zero=False), "AVE": P.fmt_num(r["ave"], 2, leading_zero=False),
                     "Meets thresholds": _ok(r["alpha"] >= 0.7 and r["cr"] >= 0.7 and r["ave"] >= 0.5)})
    return pd.DataFrame(rows)


def fit(cfa_fit: pd.Series, judgements: pd.DataFrame) -> pd.DataFrame:
    names = {"chi2": "χ²", "df": "df", "p": "p", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA", "srmr": "SRMR"}
    j = judgements[judgements["what"] == "model"].set_index("statistic")
    rows = []
    for k, name in names.items():
        v = cfa_fit[k]
        shown = P.fmt_p(v, prefix=False) if k == "p" else (P.fmt_int(v) if k == "df" else P.fmt_num(v, 3 if k != "chi2" else 1))
        if k == "rmsea":
            shown += f" [{P.fmt_num(cfa_fit['rmsea_ci_low'], 3)}, {P.fmt_num(cfa_fit['rmsea_ci_high'], 3)}]"
        reason = j.loc[k, "reason"] if k in j.index else ""
        rows.append({"Statistic": name, "Value": shown, "Judgement": reason.split(": ", 1)[-1] if reason else P.DASH})
    return pd.DataFrame(rows)


def dimensions(ctx: Context, dims: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"Dimension": dims["label"], "n": dims["n"].map(P.fmt_int), ctx.quarter: dims["score"].map(lambda x: P.fmt_num(x, 1)),
                        f"{ctx.level_pct} CI": [P.fmt_ci(a, b, 1).split("CI ")[-1] for a, b in zip(dims["ci_low"], dims["ci_high"])]})
    if "baseline" in dims:
        out[ctx.baseline_quarter] = dims["baseline"].map(lambda x: P.fmt_num(x, 1))
        out["Change"] = dims["change"].map(lambda x: P.fmt_num(x, 2, sign=True))
        out["p (Holm)"] = dims["p_holm"].map(lambda p: P.fmt_p(p, prefix=False))
        out["g"] = dims["g"].map(lambda x: P.fmt_num(x, 2))
    return out


def breakdown(ctx: Context, b: pd.DataFrame, by_label: str) -> pd.DataFrame:
    out = pd.DataFrame({by_label: b["label"], "n": b["n"].map(P.fmt_int)})
    sup = b["suppressed"].to_numpy()
    out["Satisfaction (0-100)"] = np.where(sup, "suppressed", b["csat_0_100"].map(lambda x: P.fmt_num(x, 1)))
    out["Top-2 box"] = np.where(sup, "suppressed", b["top2"].map(P.fmt_pct))
    if "nps" in b:
        out["NPS"] = np.where(sup, "suppressed", b["nps"].map(lambda x: P.fmt_num(x, 1)))
    if "recommend_top2" in b:
        out["Recommend (top-2 box)"] = np.where(sup, "suppressed", b["recommend_top2"].map(P.fmt_pct))
    return out


def lmg(study: Study, imp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Rank": imp["rank"].astype(int), "Dimension": imp["predictor"].map(study.label),
                         "Importance (R² share)": imp["importance"].map(lambda x: P.fmt_num(x, 3, leading_zero=False)),
                         "Share of R²": imp["share"].map(P.fmt_pct),
                         "95 % CI of importance": [f"[{P.fmt_num(a, 3, leading_zero=False)}, {P.fmt_num(b, 3, leading_zero=False)}]"
                                                   for a, b in zip(imp["ci_low"], imp["ci_high"])]}).sort_values("Rank").reset_index(drop=True)


def regression(study: Study, terms: pd.DataFrame) -> pd.DataFrame:
    t = terms   # the intercept is shown as its own row, "(Intercept)"
    return pd.DataFrame({"Dimension (0-100 score)": t["term"].map(study.label), "b": t["coef"].map(lambda x: P.fmt_num(x, 4)),
                         "SE (HC3)": t["se"].map(lambda x: P.fmt_num(x, 4)), "t": t["t"].map(lambda x: P.fmt_num(x, 2)),
                         "p": t["p"].map(lambda x: P.fmt_p(x, prefix=False)), "β": t["beta_std"].map(lambda x: P.fmt_num(x, 2)),
                         "VIF": t["vif"].map(lambda x: P.fmt_num(x, 2))})


def ipa(study: Study, ipa_frame: pd.DataFrame) -> pd.DataFrame:
    f = ipa_frame.sort_values("importance", ascending=False)
    return pd.DataFrame({"Dimension": f["dimension"].map(study.label), "Importance (share of R²)": f["importance"].map(P.fmt_pct),
                         "Performance (0-100)": f["performance"].map(lambda x: P.fmt_num(x, 1)),
                         "Quadrant": f["quadrant"]}).reset_index(drop=True)


def benchmark(study: Study, table: pd.DataFrame) -> pd.DataFrame:
    wide = table.pivot(index="metric", columns="bank", values="value")
    order = [m.id for m in study.benchmark.metrics if m.id in wide.index]
    ours = study.benchmark.our_bank
    banks = [ours] + sorted(b for b in wide.columns if b != ours)
    rows = []
    t = table.set_index(["metric", "bank"])
    for m in order:
        meta = next(x for x in study.benchmark.metrics if x.id == m)
        row = {"Metric": f"{meta.label} ({meta.unit})", "Better": meta.direction}
        for b in banks:
            row[b] = P.fmt_num(wide.loc[m, b], 1 if wide.loc[m, b] % 1 else 0)
        row["Our rank"] = f"{int(t.loc[(m, ours), 'rank'])} of {int(t.loc[(m, ours), 'n_banks'])}"
        rows.append(row)
    return pd.DataFrame(rows)


def business_types(study: Study, bt: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Business type": bt["business_type"].map(study.label), "Tickets": bt["n"].map(P.fmt_int),
                         "Standard (min)": bt["standard_minutes"].map(lambda x: P.fmt_num(x, 0)),
                         "Handling mean (min)": bt["handling_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         "Deviation": bt["deviation_pct"].map(lambda x: f"{P.fmt_num(x, 1, sign=True)} %"),
                         "Cycle mean (min)": bt["cycle_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         "Ideal cycle (min)": bt["ideal_cycle_minutes"].map(lambda x: P.fmt_num(x, 0)),
                         "Potential ΔT (min)": bt["improvement_potential"].map(lambda x: P.fmt_num(x, 1)),
                         "First-pass yield": bt["first_pass_yield"].map(P.fmt_pct)})


def branches(ctx: Context, br: pd.DataFrame, sqi: pd.DataFrame) -> pd.DataFrame:
    study = ctx.study
    s = None if sqi is None else (sqi["sqi_current"] if "sqi_current" in sqi else sqi["sqi"])
    out = pd.DataFrame({"Branch": br["branch_id"].map(study.label), "Tickets": br["n"].map(P.fmt_int),
                         "Wait mean (min)": br["waiting_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         "Wait p90 (min)": br["waiting_minutes_p90"].map(lambda x: P.fmt_num(x, 1)),
                         f"Called within {P.fmt_num(study.service_level.waiting_target_minutes, 0)} min":
                             br["within_service_level"].map(P.fmt_pct),
                         "Handling mean (min)": br["handling_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         "First-pass yield": br["first_pass_yield"].map(P.fmt_pct)})
    if s is not None:
        col = "suppressed_current" if "suppressed_current" in sqi else "suppressed"
        hidden = set(sqi.index[sqi[col].astype(bool)]) if col in sqi else set()
        out["SQI (0-100)"] = br["branch_id"].map(lambda b: "suppressed" if b in hidden else
                                                 P.fmt_num(pd.to_numeric(s.get(b, np.nan)) * 100, 1))
    return out


def sqi(ctx: Context, s: pd.DataFrame) -> pd.DataFrame:
    study = ctx.study
    rows = []
    for ind in study.sqi:
        r = {"Indicator": f"{ind.label} ({ind.unit})" if ind.unit else ind.label, "Weight": P.fmt_num(ind.weight, 2),
             "Better": ind.direction, "Range": f"{P.fmt_num(ind.min, 2)} – {P.fmt_num(ind.max, 2)}"}
        for which, q in (("baseline", ctx.baseline_quarter), ("current", ctx.quarter)):
            col = f"{ind.id}_{which}"
            if q and col in s:
                r[f"{q} value"] = P.fmt_num(s.loc["all", col], 3 if abs(s.loc["all", col]) < 1 else 1)
                r[f"{q} contribution"] = P.fmt_num(s.loc["all", f"{ind.id}_contribution_{which}"] * 100, 1)
        rows.append(r)
    total = {"Indicator": "SQI (0-100)", "Weight": P.fmt_num(sum(i.weight for i in study.sqi), 2), "Better": "higher", "Range": ""}
    for which, q in (("baseline", ctx.baseline_quarter), ("current", ctx.quarter)):
        if q and f"sqi_{which}" in s:
            total[f"{q} value"] = ""
            total[f"{q} contribution"] = P.fmt_num(s.loc["all", f"sqi_{which}"] * 100, 1)
    rows.append(total)
    return pd.DataFrame(rows)


def effects(ctx: Context, ev: pd.DataFrame, analysis: str) -> pd.DataFrame:
    """The analyses of one kind that ran (skipped ones are listed by ``narrative.effects_skipped``).

    Before/after tables: the headline test and its p. DiD tables: the cluster-SE CI with its own p
    ("p (cluster SE)") and, when it was run, the wild-bootstrap p beside it, named with its B; Holm
    and BH adjust the headline p (``p_used``; the table note says which). A "Measure" column is
    added when several measures are shown.
    """
    if ev is None or ev.empty:
        return pd.DataFrame()
    e = ev[(ev["analysis"] == analysis) & ev["skipped"].fillna("").eq("")]
    names = {m.id: m.name for m in ctx.study.measures}
    several = e["measure"].nunique() > 1
    did = analysis == "difference-in-differences"
    boot = did and e["test"].eq("did_wild_bootstrap").any()
    boot_col = f"p (wild bootstrap, B = {P.fmt_int(e['n_boot'].max())})" if boot else None
    rows = []
    for r in e.to_dict("records"):
        m = r["metric"]
        row = {"Measure": names.get(r["measure"], r["measure"])} if several else {}
        row["Metric"] = r["label"]
        if not did:
            row.update({"Before": value(m, r["before_value"]), "After": value(m, r["after_value"])})
        row.update({"Estimate": change(m, r["estimate"]), f"{ctx.level_pct} CI": ci(m, r["ci_low"], r["ci_high"])})
        if did:
            row["p (cluster SE)"] = P.fmt_p(r["p"], prefix=False)
            if boot:
                row[boot_col] = P.fmt_p(r["boot_p"], prefix=False)
        else:
            row["Test"] = TEST_NAMES.get(r["test"], str(r["test"]).replace("_", " "))
            row["p"] = P.fmt_p(r["p_used"], prefix=False)
        row.update({"p (Holm)": P.fmt_p(r["p_holm"], prefix=False), "p (BH)": P.fmt_p(r["p_bh"], prefix=False)})
        if not did:
            row["Effect size"] = (f"{r['effect_size_name']} = {P.fmt_num(r['effect_size'], 2)}"
                                  if isinstance(r["effect_size_name"], str) and r["effect_size_name"] else P.DASH)
        row.update({"Power": P.fmt_pct(r["power"], 0), "MDE": change(m, r["mde"]).lstrip("+")})
        if did:
            row["Clusters"] = P.fmt_int(r["n_clusters"])
            row["Pre-trend p"] = P.fmt_p(r["pretrend_p"], prefix=False)
        rows.append(row)
    return pd.DataFrame(rows)


def its_change(metric: str, x, per_week: bool = False) -> str:
    """An ITS level (or, ``per_week``, slope) change in the metric's unit: "−2.17 min", "−3.2 pp"."""
    if x is None or pd.isna(x):
        return P.DASH
    m = mx.lookup(metric)
    if m.style == "pct":
        return P.fmt_pp(x, 2 if per_week else 1)
    text = P.fmt_num(x, 3 if per_week else 2, sign=True)
    return text + (" min" if m.style == "min" else "")


def its(ctx: Context, its_frame: pd.DataFrame) -> pd.DataFrame:
    """The fitted interrupted time series, each measure on its own queue-log metrics (levels in the metric's unit)."""
    if its_frame is None or its_frame.empty or "status" not in its_frame:
        return pd.DataFrame()
    study = ctx.study
    f = its_frame[its_frame["status"].eq("fitted")]
    if f.empty:
        return pd.DataFrame()
    names = {m.id: m.name for m in study.measures}
    out = pd.DataFrame({"Metric": f["metric"].map(study.label), "Branches": f["group"],
                        "Level change": [its_change(m, x) for m, x in zip(f["metric"], f["level_change"])],
                        "Relative": f["relative_level_change"].map(lambda x: P.fmt_pct(x, sign=True)),
                        "p (level)": f["level_p"].map(lambda x: P.fmt_p(x, prefix=False)),
                        "Slope change per week": [its_change(m, x, True) for m, x in zip(f["metric"], f["slope_change"])],
                        "p (slope)": f["slope_p"].map(lambda x: P.fmt_p(x, prefix=False)),
                        "Weeks pre / post": [f"{int(a)} / {int(b)}" for a, b in zip(f["n_pre"], f["n_post"])]})
    if f["measure"].nunique() > 1:
        out.insert(0, "Measure", f["measure"].map(names).to_numpy())
    return out.reset_index(drop=True)


def measures(study: Study, plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """The measures of study.yml; with ``analysis.measure_plan`` also how each is evaluated in this report."""
    rows = []
    p = plan.set_index("measure") if plan is not None and not plan.empty else None
    for m in study.measures:
        row = {"Measure": m.name, "Start": f"{m.start:%Y-%m-%d}",
               "Pilot branches": ", ".join(f"{b} {study.label(b)}" for b in m.pilot),
               "Control branches": ", ".join(f"{b} {study.label(b)}" for b in m.control) or P.DASH,
               "Metrics it should move": ", ".join(study.label(x) for x in m.metrics)}
        if p is not None and m.id in p.index:
            r = p.loc[m.id]
            row["Evaluation in this report"] = (f"{r['design']}, {r['before']} → {r['after']}"
                                                + (" (sustained effect)" if r["status"] == "sustained" else "")
                                                if r["design"] != "not tested" else f"{r['status']}: {r['reason']}")
        rows.append(row)
    return pd.DataFrame(rows)


def data_quality(dq: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Quarter": dq["quarter"], "Dataset": dq["dataset"].str.replace("_", " "),
                         "Rows read": dq["read"].map(P.fmt_int), "Kept": dq["kept"].map(P.fmt_int),
                         "Rejected": dq["rejected"].map(P.fmt_int), "Kept share": dq["kept_share"].map(lambda x: P.fmt_pct(x, 2))})


def rejections(rej: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows by dataset and reason, one column per quarter."""
    if rej.empty:
        return pd.DataFrame({"Dataset": [], "Reason": []})
    wide = rej.pivot_table(index=["dataset", "reason"], columns="quarter", values="rows", aggfunc="sum", fill_value=0)
    wide = wide.reset_index()
    out = pd.DataFrame({"Dataset": wide["dataset"].str.replace("_", " "), "Reason": wide["reason"].str.replace("_", " ")})
    for q in [c for c in wide.columns if c not in ("dataset", "reason")]:
        out[q] = wide[q].map(P.fmt_int)
    return out
