"""Result tables formatted for reading: the frames the report shows, with labels and units.

Each function takes a result of :mod:`study.report.analysis` and returns a DataFrame of strings (numbers
formatted APA-style by :mod:`study.report.present`) whose column names are the headers a reviewer reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import i18n
from study import metrics as mx
from study.data.config import Study
from study.i18n import NP_
from study.report import present as P
from study.report.analysis import Context

TICK, CROSS = "✓", "✗"
GROUPING_LABELS = {"branch_id": "Branch", "segment": "Segment", "channel": "Channel"}
OPERATORS = {">=": "≥", "<=": "≤"}
TEST_NAMES = {"welch": "Welch t", "student": "Student t", "mann_whitney": "Mann–Whitney U", "paired_t": "paired t",
              "wilcoxon": "Wilcoxon signed-rank", "two_proportion": "two-proportion χ²", "nps": "NPS z",
              "did_cluster": "DiD, cluster SE", "did_wild_bootstrap": "DiD, wild bootstrap", "did_design": "DiD, design-based",
              "design_t": "design-based t"}


#: Headers built from values (f-strings) and the words results store in English, marked for the
#: catalogue; study.report.present translates headers (context "column") and such cells (context "cell") where shown.
COLUMN_TEMPLATES = [NP_("column", "{} CI"), NP_("column", "{} value"), NP_("column", "{} contribution"),
                    NP_("column", "Called within {} min"), NP_("column", "p (wild bootstrap, B = {})"),
                    NP_("column", "95 % CI of importance"), NP_("column", "α 95 % CI"), NP_("column", "Meets thresholds"),
                    NP_("column", "Problem"), NP_("column", "Evidence"), NP_("column", "Rule"), NP_("column", "Text"),
                    NP_("column", "Name"), NP_("column", "Section"), NP_("column", "Item"), NP_("column", "Value"),
                    NP_("column", "baseline"), NP_("column", "Weeks pre / post"), NP_("column", "Power"),
                    NP_("column", "Test"), NP_("column", "Rank"), NP_("column", "p (level)"), NP_("column", "p (slope)"),
                    NP_("column", "p (Holm)"), NP_("column", "p (BH)"), NP_("column", "p (cluster SE)"), NP_("column", "p (t test)"),
                    NP_("column", "Pre-trend p"), NP_("column", "Evaluation in this report"), NP_("column", "Our rank"),
                    NP_("column", "Effect size"), NP_("column", "Measure"), NP_("column", "Metric"),
                    NP_("column", "Branches"), NP_("column", "Clusters"), NP_("column", "Recommend (top-2 box)"),
                    NP_("column", "SE (HC3)"), NP_("column", "Statistic"), NP_("column", "Label"), NP_("column", "Reference"),
                    NP_("column", "Quarter"), NP_("column", "Dataset"), NP_("column", "Reason"), NP_("column", "Branch"),
                    NP_("column", "Segment"), NP_("column", "Channel"), NP_("column", "Importance (R² share)"),
                    NP_("column", "Share of R²"), NP_("column", "Items")]
#: Effect sizes the statistics store by name (study.stats.effects), shown translated in the effects tables.
EFFECT_NAMES = [NP_("effect size", "rank-biserial r"), NP_("effect size", "Hedges' g"), NP_("effect size", "Cohen's h"),
                NP_("effect size", "d_z")]
CELL_WORDS = [NP_("cell", "suppressed"), NP_("cell", "composite index, not tested"), NP_("cell", "higher"),
              NP_("cell", "lower"), NP_("cell", "improved"), NP_("cell", "worsened"), NP_("cell", "no significant change"),
              NP_("cell", "not tested"), NP_("cell", "met"), NP_("cell", "not met"), NP_("cell", "not distinguishable"),
              NP_("cell", "not measured"), NP_("cell", "no baseline"),
              NP_("cell", "concentrate here"), NP_("cell", "keep up the good work"), NP_("cell", "low priority"),
              NP_("cell", "possible overkill"), NP_("cell", "(Intercept)"), NP_("cell", "Welch t"), NP_("cell", "Student t"),
              NP_("cell", "Mann–Whitney U"), NP_("cell", "paired t"), NP_("cell", "Wilcoxon signed-rank"),
              NP_("cell", "two-proportion χ²"), NP_("cell", "NPS z"), NP_("cell", "DiD, cluster SE"),
              NP_("cell", "DiD, wild bootstrap"), NP_("cell", "DiD, design-based"), NP_("cell", "design-based t"),
              NP_("cell", "SQI (0-100)"), NP_("cell", "survey"),
              NP_("cell", "process times"), NP_("cell", "benchmark"), NP_("cell", "pilot"), NP_("cell", "control"),
              NP_("cell", "difference-in-differences"), NP_("cell", "pilot before/after"), NP_("cell", "not testable"), NP_("cell", "planned"),
              NP_("cell", "introduced"), NP_("cell", "sustained"),
              NP_("cell", "{}, {} → {}"), NP_("cell", "{}, {} → {} (sustained effect)"), NP_("cell", "{}: {}")]


def _branch_named(study, branch: str) -> str:
    """A branch with its id: "B01 Central" in English, "中心支行（B01）" in Chinese (the name first, the id in brackets)."""
    name = study.label(branch)
    if name == branch:
        return branch
    return f"{name}（{branch}）" if i18n.language() == "zh" else f"{branch} {name}"


def metric_label(metric: str, study=None) -> str:
    """A metric's label in the active language, from the registry (analysis results carry the English
    label; one analysis serves every language). A missing Chinese label shows the English one, marked."""
    m = mx.lookup(metric, study)
    if i18n.language() == "en":
        return m.label
    other = m.label_in(i18n.language())
    return other if (other and other != m.label) or not m.label else i18n.untranslated(m.label)


#: Rejection reasons of study.data.validate as the data-quality appendix shows them (underscores as spaces).
REASON_WORDS = [NP_("cell", "absurd handling"), NP_("cell", "absurd waiting"), NP_("cell", "called before issued"),
                NP_("cell", "date outside quarter"), NP_("cell", "duplicate entry"), NP_("cell", "duplicate id"),
                NP_("cell", "finished before started"), NP_("cell", "missing value"), NP_("cell", "out of range"),
                NP_("cell", "started before called"), NP_("cell", "straight lining"), NP_("cell", "unknown branch"),
                NP_("cell", "unknown business type"), NP_("cell", "unknown channel"), NP_("cell", "unknown metric"),
                NP_("cell", "unknown segment"), NP_("cell", "unparsable"), NP_("cell", "process times"),
                NP_("cell", "survey"), NP_("cell", "benchmark"),
                # the service-request log's rules and dataset (study.data.validate.request_rules), the survey's weight
                NP_("cell", "absurd resolution"), NP_("cell", "absurd response"), NP_("cell", "escalated but ai"),
                NP_("cell", "resolved before received"), NP_("cell", "resolved before response"),
                NP_("cell", "responded before received"), NP_("cell", "unknown grade"), NP_("cell", "unknown handler"),
                NP_("cell", "invalid weight"), NP_("cell", "service requests"),
                # the text rule and the magnitude bound of study.data.values (issue 22)
                NP_("cell", "control character"), NP_("cell", "implausible value")]

#: Unit words study.yml uses for SQI indicators and benchmark metrics (shown translated when known).
UNIT_WORDS = [NP_("unit", "min"), NP_("unit", "share"), NP_("unit", "score"), NP_("unit", "points"), NP_("unit", "count"),
              NP_("unit", "score (1-10)"), NP_("unit", "days"), NP_("unit", "hours")]


def unit_text(unit: str) -> str:
    """A unit from study.yml in the active language when the catalogue knows the word ("min" → "分钟"), else as written."""
    return i18n.tr_known(unit, "unit")


def _MIN() -> str:
    """The unit after a duration in prose: " min" ("分钟" in Chinese)."""
    return i18n.pgettext("unit", " min")


def target_label(study, row) -> str:
    """A target's label in the active language (``label_zh`` of study.yml in Chinese)."""
    t = next((t for t in study.targets if t.id == row.get("target")), None)
    return i18n.pick(t, "label") if t is not None else str(row.get("label", ""))


def _ok(v) -> str:
    return P.DASH if v is None or (isinstance(v, float) and np.isnan(v)) else (TICK if bool(v) else CROSS)


def value(metric: str, x, study=None, unit: bool = False, extra: int = 0) -> str:
    """A metric's value as the registry says it is written: shares as per cent, minutes with one decimal
    (``unit=True`` adds " min"), scores with one decimal from 10 up, means on a short scale with two
    (``extra`` more decimals, see :func:`digits_apart`)."""
    if x is None or pd.isna(x):
        return P.DASH
    m = mx.lookup(metric, study)
    if m.style == "pct":
        return P.fmt_pct(x, 1 + extra)
    if m.style == "min":
        return P.fmt_num(x, 1 + extra) + (_MIN() if unit else "")
    if m.kind in ("score", "nps", "index", "mean"):
        return P.fmt_num(x, m.digits + extra)
    return P.fmt_num(x, (1 if abs(x) >= 10 else 2) + extra)


def change(metric: str, x, study=None, unit: bool = False, extra: int = 0) -> str:
    """A change of a metric: percentage points for shares, signed numbers otherwise."""
    if x is None or pd.isna(x):
        return P.DASH
    m = mx.lookup(metric, study)
    if m.style == "pct":
        return P.fmt_pp(x, 1 + extra)
    return P.fmt_num(x, (2 if abs(x) < 10 else 1) + extra, sign=True) + (_MIN() if unit and m.style == "min" else "")


def digits_apart(fmt, values, thresholds, most: int = 6) -> int:
    """How many decimals beyond the usual ``fmt(x, extra)`` needs so that no value other than a threshold is shown
    as that threshold (89.96 % against ≥ 90 % printed "90.0 %" beside "not met"). Rounding keeps the order, so
    values written apart from a threshold are written on their true side of it."""
    vals = [float(v) for v in values if v is not None and not pd.isna(v)]
    thr = [float(t) for t in thresholds if t is not None and not pd.isna(t)]
    for extra in range(most + 1):
        if all(v == t or fmt(v, extra) != fmt(t, extra) for v in vals for t in thr):
            return extra
    return most


def ci(metric: str, lo, hi, study=None) -> str:
    if lo is None or pd.isna(lo):
        return P.DASH
    if mx.lookup(metric, study).style == "pct":
        if i18n.language() == "zh":   # the unit (个百分点) is in the change beside it: the interval stays narrow
            return f"[{P.fmt_num(float(lo) * 100, 1, sign=True)}, {P.fmt_num(float(hi) * 100, 1, sign=True)}]"
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
        label = metric_label(m, ctx.study) if m != "sqi" else (mx.SQI.label_in(i18n.language()) or mx.SQI.label)
        name = label + (P.pmd("unit", " (min)") if mx.lookup(m, ctx.study).style == "min" and "(min)" not in r["label"] else "")
        rows.append({NP_("column", "Figure"): name, ctx.baseline_quarter or "baseline": value(m, r.get("baseline"), ctx.study),
                     ctx.quarter: value(m, r.get("current"), ctx.study), NP_("column", "Change"): change(m, r.get("change"), ctx.study),
                     f"{ctx.level_pct} CI": ci(m, r.get("ci_low"), r.get("ci_high"), ctx.study),
                     NP_("column", "Test"): test_text(r) if m != "sqi" else "composite index, not tested",
                     NP_("column", "Verdict"): r.get("verdict", P.DASH)})
    out = pd.DataFrame(rows)
    if ctx.baseline is None:
        out = out.drop(columns=["baseline", "Change", f"{ctx.level_pct} CI", "Test", "Verdict"], errors="ignore")
    return out


def target_formatter(r: dict, study):
    """``f(x, extra)`` writing a target's observed value, bounds and threshold (relative changes as signed per cent,
    changes as :func:`change`, levels as :func:`value`)."""
    m = r["metric"]
    if r["kind"] == "relative_change":
        return lambda x, extra=0: P.fmt_pct(x, 1 + extra, sign=True)
    if r["kind"] == "change":   # a difference: percentage points for shares, signed otherwise
        return lambda x, extra=0: change(m, x, study, extra=extra)
    return lambda x, extra=0: value(m, x, study, extra=extra)


def targets(ctx: Context, t: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in t.to_dict("records"):
        fmt = target_formatter(r, ctx.study)
        extra = digits_apart(fmt, [r["observed"], r["ci_low"], r["ci_high"]], [r["target_value"]])
        fmt = lambda x, f=fmt, e=extra: f(x, e)  # noqa: E731
        rows.append({NP_("column", "Target"): target_label(ctx.study, r), NP_("column", "Observed"): fmt(r["observed"]),
                     f"{ctx.level_pct} CI": P.DASH if pd.isna(r["ci_low"]) else f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]",
                     NP_("column", "Threshold"): f"{OPERATORS.get(r['operator'], r['operator'])} {fmt(r['target_value'])}",
                     NP_("column", "Status"): r["status"]})
    return pd.DataFrame(rows)


def reliability(study: Study, scales: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in scales.to_dict("records"):
        rows.append({NP_("column", "Dimension"): study.label(r["scale"]), "n": P.fmt_int(r["n"]), NP_("column", "Items"): int(r["k"]),
                     "α": P.fmt_num(r["alpha"], 2, leading_zero=False),
                     "α 95 % CI": P.fmt_ci(r["alpha_ci_low"], r["alpha_ci_high"], 2, leading_zero=False, label=False),
                     "ω": P.fmt_num(r["omega_total"], 2, leading_zero=False),
                     "CR": P.fmt_num(r["cr"], 2, leading_zero=False), "AVE": P.fmt_num(r["ave"], 2, leading_zero=False),
                     NP_("column", "Meets thresholds"): _ok(r["alpha"] >= 0.7 and r["cr"] >= 0.7 and r["ave"] >= 0.5)})
    return pd.DataFrame(rows)


#: Judgement statistics that make a CFA solution unreadable (study.stats.reliability.cfa).
IMPROPER = ("convergence", "negative_residual_variance", "negative_factor_variance", "factor_covariance_not_pd")


def fit(cfa_fit: pd.Series, judgements: pd.DataFrame) -> pd.DataFrame:
    names = {"chi2": "χ²", "df": "df", "p": "p", "cfi": "CFI", "tli": "TLI", "rmsea": "RMSEA", "srmr": "SRMR"}
    j = judgements[judgements["what"] == "model"].set_index("statistic")
    # an unconverged or improper solution (study.stats.reliability.admissibility): its fit is not judged
    inadmissible = judgements["statistic"].isin(IMPROPER).any()
    rows = []
    for k, name in names.items():
        v = cfa_fit[k]
        shown = P.fmt_p(v, prefix=False) if k == "p" else (P.fmt_int(v) if k == "df" else P.fmt_num(v, 3 if k != "chi2" else 1))
        if k == "rmsea":
            shown += f" [{P.fmt_num(cfa_fit['rmsea_ci_low'], 3)}, {P.fmt_num(cfa_fit['rmsea_ci_high'], 3)}]"
        reason = j.loc[k, "reason"] if k in j.index else ""
        if inadmissible and reason:
            reason = ": " + i18n.pgettext("cell", "not interpreted (improper solution)")
        elif reason and i18n.language() != "en":
            from study.thresholds import judge_verdict

            reason = ": " + judge_verdict(k, v)
        rows.append({NP_("column", "Statistic"): name, NP_("column", "Value"): shown,
                     NP_("column", "Judgement"): reason.split(": ", 1)[-1] if reason else P.DASH})
    return pd.DataFrame(rows)


def dimensions(ctx: Context, dims: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({NP_("column", "Dimension"): dims["dimension"].map(ctx.study.label), "n": dims["n"].map(P.fmt_int),
                        ctx.quarter: dims["score"].map(lambda x: P.fmt_num(x, 1)),
                        f"{ctx.level_pct} CI": [P.fmt_ci(a, b, 1, label=False) for a, b in zip(dims["ci_low"], dims["ci_high"])]})
    if "baseline" in dims:
        out[ctx.baseline_quarter] = dims["baseline"].map(lambda x: P.fmt_num(x, 1))
        out[NP_("column", "Change")] = dims["change"].map(lambda x: P.fmt_num(x, 2, sign=True))
        out["p (Holm)"] = dims["p_holm"].map(lambda p: P.fmt_p(p, prefix=False))
        out["g"] = dims["g"].map(lambda x: P.fmt_num(x, 2))
    return out


def breakdown(ctx: Context, b: pd.DataFrame, by_label: str) -> pd.DataFrame:
    by_col = next((c for c in b.columns if str(c).startswith("by_")), None)
    out = pd.DataFrame({by_label: b[by_col].map(ctx.study.label) if by_col else b["label"], "n": b["n"].map(P.fmt_int)})
    sup = b["suppressed"].to_numpy()
    out[NP_("column", "Satisfaction (0-100)")] = np.where(sup, "suppressed", b["csat_0_100"].map(lambda x: P.fmt_num(x, 1)))
    out[NP_("column", "Top-2 box")] = np.where(sup, "suppressed", b["top2"].map(P.fmt_pct))
    if "nps" in b:
        out[NP_("column", "NPS")] = np.where(sup, "suppressed", b["nps"].map(lambda x: P.fmt_num(x, 1)))
    if "recommend_top2" in b:
        out[NP_("column", "Recommend (top-2 box)")] = np.where(sup, "suppressed", b["recommend_top2"].map(P.fmt_pct))
    return out


def lmg(study: Study, imp: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({NP_("column", "Rank"): imp["rank"].astype(int), NP_("column", "Dimension"): imp["predictor"].map(study.label),
                         NP_("column", "Importance (R² share)"): imp["importance"].map(lambda x: P.fmt_num(x, 3, leading_zero=False)),
                         NP_("column", "Share of R²"): imp["share"].map(P.fmt_pct),
                         "95 % CI of importance": [f"[{P.fmt_num(a, 3, leading_zero=False)}, {P.fmt_num(b, 3, leading_zero=False)}]"
                                                   for a, b in zip(imp["ci_low"], imp["ci_high"])]}).sort_values("Rank").reset_index(drop=True)


def regression(study: Study, terms: pd.DataFrame, cov_type: str = "HC3") -> pd.DataFrame:
    t = terms   # the intercept is shown as its own row, "(Intercept)"
    se = NP_("column", "SE (design)") if cov_type == "design" else NP_("column", "SE (HC3)")
    return pd.DataFrame({NP_("column", "Dimension (0-100 score)"): t["term"].map(study.label), "b": t["coef"].map(lambda x: P.fmt_num(x, 4)),
                         se: t["se"].map(lambda x: P.fmt_num(x, 4)), "t": t["t"].map(lambda x: P.fmt_num(x, 2)),
                         "p": t["p"].map(lambda x: P.fmt_p(x, prefix=False)), "β": t["beta_std"].map(lambda x: P.fmt_num(x, 2)),
                         "VIF": t["vif"].map(lambda x: P.fmt_num(x, 2))})


def ipa(study: Study, ipa_frame: pd.DataFrame) -> pd.DataFrame:
    f = ipa_frame.sort_values("importance", ascending=False)
    return pd.DataFrame({NP_("column", "Dimension"): f["dimension"].map(study.label),
                         NP_("column", "Importance (share of R²)"): f["importance"].map(P.fmt_pct),
                         NP_("column", "Performance (0-100)"): f["performance"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "Quadrant"): f["quadrant"]}).reset_index(drop=True)


def benchmark(study: Study, table: pd.DataFrame) -> pd.DataFrame:
    wide = table.pivot(index="metric", columns="bank", values="value")
    order = [m.id for m in study.benchmark.metrics if m.id in wide.index]
    ours = study.benchmark.our_bank
    banks = [ours] + sorted(b for b in wide.columns if b != ours)
    rows = []
    t = table.set_index(["metric", "bank"])
    for m in order:
        meta = next(x for x in study.benchmark.metrics if x.id == m)
        row = {NP_("column", "Metric"): i18n.pgettext("cell", "{} ({})").format(i18n.pick(meta, 'label'), study.benchmark_unit(meta)),
               NP_("column", "Better"): meta.direction}
        for b in banks:
            row[study.bank_name(b)] = P.fmt_num(wide.loc[m, b], 1 if wide.loc[m, b] % 1 else 0)
        row["Our rank"] = i18n.pgettext("cell", "{} of {}").format(int(t.loc[(m, ours), 'rank']), int(t.loc[(m, ours), 'n_banks']))
        rows.append(row)
    return pd.DataFrame(rows)


def business_types(study: Study, bt: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({NP_("column", "Business type"): bt["business_type"].map(study.label), NP_("column", "Tickets"): bt["n"].map(P.fmt_int),
                         NP_("column", "Standard (min)"): bt["standard_minutes"].map(lambda x: P.fmt_num(x, 0)),
                         NP_("column", "Handling mean (min)"): bt["handling_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "Deviation"): bt["deviation_pct"].map(lambda x: i18n.percent(P.fmt_num(x, 1, sign=True))),
                         NP_("column", "Cycle mean (min)"): bt["cycle_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "Ideal cycle (min)"): bt["ideal_cycle_minutes"].map(lambda x: P.fmt_num(x, 0)),
                         NP_("column", "Potential ΔT (min)"): bt["improvement_potential"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "First-pass yield"): bt["first_pass_yield"].map(P.fmt_pct)})


def branches(ctx: Context, br: pd.DataFrame, sqi: pd.DataFrame) -> pd.DataFrame:
    study = ctx.study
    s = None if sqi is None else (sqi["sqi_current"] if "sqi_current" in sqi else sqi["sqi"])
    out = pd.DataFrame({NP_("column", "Branch"): br["branch_id"].map(study.label), NP_("column", "Tickets"): br["n"].map(P.fmt_int),
                         NP_("column", "Wait mean (min)"): br["waiting_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "Wait p90 (min)"): br["waiting_minutes_p90"].map(lambda x: P.fmt_num(x, 1)),
                         f"Called within {P.fmt_num(study.service_level.waiting_target_minutes, 0)} min":
                             br["within_service_level"].map(P.fmt_pct),
                         NP_("column", "Handling mean (min)"): br["handling_minutes_mean"].map(lambda x: P.fmt_num(x, 1)),
                         NP_("column", "First-pass yield"): br["first_pass_yield"].map(P.fmt_pct)})
    if s is not None:
        col = "suppressed_current" if "suppressed_current" in sqi else "suppressed"
        hidden = set(sqi.index[sqi[col].astype(bool)]) if col in sqi else set()
        out[NP_("column", "SQI (0-100)")] = br["branch_id"].map(lambda b: "suppressed" if b in hidden else
                                                 P.fmt_num(pd.to_numeric(s.get(b, np.nan)) * 100, 1))
    return out


def sqi(ctx: Context, s: pd.DataFrame) -> pd.DataFrame:
    study = ctx.study
    rows = []
    for ind in study.sqi:
        shown = i18n.pick(ind, "label")
        if ind.unit:
            shown = i18n.pgettext("cell", "{} ({})").format(shown, unit_text(ind.unit))
        r = {NP_("column", "Indicator"): shown, NP_("column", "Weight"): P.fmt_num(ind.weight, 2),
             NP_("column", "Better"): ind.direction, NP_("column", "Range"): f"{P.fmt_num(ind.min, 2)} – {P.fmt_num(ind.max, 2)}"}
        for which, q in (("baseline", ctx.baseline_quarter), ("current", ctx.quarter)):
            col = f"{ind.id}_{which}"
            if q and col in s:
                r[f"{q} value"] = P.fmt_num(s.loc["all", col], 3 if abs(s.loc["all", col]) < 1 else 1)
                r[f"{q} contribution"] = P.fmt_num(s.loc["all", f"{ind.id}_contribution_{which}"] * 100, 1)
        rows.append(r)
    total = {NP_("column", "Indicator"): "SQI (0-100)", NP_("column", "Weight"): P.fmt_num(sum(i.weight for i in study.sqi), 2),
             NP_("column", "Better"): "higher", NP_("column", "Range"): ""}
    for which, q in (("baseline", ctx.baseline_quarter), ("current", ctx.quarter)):
        if q and f"sqi_{which}" in s:
            total[f"{q} value"] = ""
            total[f"{q} contribution"] = P.fmt_num(s.loc["all", f"sqi_{which}"] * 100, 1)
    rows.append(total)
    return pd.DataFrame(rows)


def effects(ctx: Context, ev: pd.DataFrame, analysis: str) -> pd.DataFrame:
    """The analyses of one kind that ran (skipped ones are listed by ``text.effects.effects_skipped``).

    Before/after tables: the headline test and its p. DiD tables: the cluster-SE CI with its own p
    ("p (cluster SE)") and, when it was run, the wild-bootstrap p beside it, named with its B; Holm
    and BH adjust the headline p (``p_used``; the table note says which). A "Measure" column is
    added when several measures are shown.
    """
    if ev is None or ev.empty:
        return pd.DataFrame()
    e = ev[(ev["analysis"] == analysis) & ev["skipped"].fillna("").eq("")]
    names = {m.id: i18n.pick(m, "name") for m in ctx.study.measures}
    several = e["measure"].nunique() > 1
    did = analysis == "difference-in-differences"
    boot = did and e["test"].eq("did_wild_bootstrap").any()
    design = did and e["test"].eq("did_design").any()
    boot_col = f"p (wild bootstrap, B = {P.fmt_int(e['n_boot'].max())})" if boot else None
    rows = []
    for r in e.to_dict("records"):
        m = r["metric"]
        row = {NP_("column", "Measure"): names.get(r["measure"], r["measure"])} if several else {}
        row["Metric"] = metric_label(m, ctx.study)
        if not did:
            row.update({NP_("column", "Before"): value(m, r["before_value"]), NP_("column", "After"): value(m, r["after_value"])})
        row.update({NP_("column", "Estimate"): change(m, r["estimate"]), f"{ctx.level_pct} CI": ci(m, r["ci_low"], r["ci_high"])})
        if did and design:   # survey figures on the sampling design, queue-log figures clustered by branch
            row[NP_("column", "Standard errors")] = (NP_("cell", "design-based") if r["test"] == "did_design"
                                                     else NP_("cell", "clustered by branch"))
            row["p (t test)"] = P.fmt_p(r["p"], prefix=False)
            if boot:
                row[boot_col] = P.fmt_p(r["boot_p"], prefix=False)
        elif did:
            row["p (cluster SE)"] = P.fmt_p(r["p"], prefix=False)
            if boot:
                row[boot_col] = P.fmt_p(r["boot_p"], prefix=False)
        else:
            row["Test"] = TEST_NAMES.get(r["test"], str(r["test"]).replace("_", " "))
            row["p"] = P.fmt_p(r["p_used"], prefix=False)
        row.update({"p (Holm)": P.fmt_p(r["p_holm"], prefix=False), "p (BH)": P.fmt_p(r["p_bh"], prefix=False)})
        if not did:
            row["Effect size"] = (f"{i18n.tr_known(r['effect_size_name'], 'effect size')} = {P.fmt_num(r['effect_size'], 2)}"
                                  if isinstance(r["effect_size_name"], str) and r["effect_size_name"] else P.DASH)
        row.update({NP_("column", "Power"): P.fmt_pct(r["power"], 0), "MDE": change(m, r["mde"]).lstrip("+")})
        if did:
            # a design-based DiD's variance comes from the strata, not from branch clusters
            row["Clusters"] = P.DASH if r["test"] == "did_design" else P.fmt_int(r["n_clusters"])
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
    return text + (_MIN() if m.style == "min" else "")


def its(ctx: Context, its_frame: pd.DataFrame) -> pd.DataFrame:
    """The fitted interrupted time series, each measure on its own queue-log metrics (levels in the metric's unit)."""
    if its_frame is None or its_frame.empty or "status" not in its_frame:
        return pd.DataFrame()
    study = ctx.study
    f = its_frame[its_frame["status"].eq("fitted")]
    if f.empty:
        return pd.DataFrame()
    names = {m.id: i18n.pick(m, "name") for m in study.measures}
    out = pd.DataFrame({NP_("column", "Metric"): f["metric"].map(study.label), NP_("column", "Branches"): f["group"],
                        NP_("column", "Level change"): [its_change(m, x) for m, x in zip(f["metric"], f["level_change"])],
                        NP_("column", "Relative"): f["relative_level_change"].map(lambda x: P.fmt_pct(x, sign=True)),
                        "p (level)": f["level_p"].map(lambda x: P.fmt_p(x, prefix=False)),
                        NP_("column", "Slope change per week"): [its_change(m, x, True) for m, x in zip(f["metric"], f["slope_change"])],
                        "p (slope)": f["slope_p"].map(lambda x: P.fmt_p(x, prefix=False)),
                        NP_("column", "Weeks pre / post"): [f"{int(a)} / {int(b)}" for a, b in zip(f["n_pre"], f["n_post"])]})
    if f["measure"].nunique() > 1:
        out.insert(0, "Measure", f["measure"].map(names).to_numpy())
    return out.reset_index(drop=True)


def measures(study: Study, plan: pd.DataFrame | None = None) -> pd.DataFrame:
    """The measures of study.yml; with ``analysis.measure_plan`` also how each is evaluated in this report."""
    rows = []
    p = plan.set_index("measure") if plan is not None and not plan.empty else None
    for m in study.measures:
        row = {NP_("column", "Measure"): i18n.pick(m, "name"),
               NP_("column", "Start"): f"{m.start:%Y-%m-%d}" if i18n.language() == "en" else i18n.date(m.start),
               NP_("column", "Pilot branches"): i18n.comma_join(_branch_named(study, b) for b in m.pilot),
               NP_("column", "Control branches"): i18n.comma_join(_branch_named(study, b) for b in m.control) or P.DASH,
               NP_("column", "Metrics it should move"): i18n.comma_join(study.label(x) for x in m.metrics)}
        if p is not None and m.id in p.index:
            r = p.loc[m.id]
            if r["design"] != "not tested":
                shown = (i18n.pgettext("cell", "{}, {} → {} (sustained effect)") if r["status"] == "sustained"
                         else i18n.pgettext("cell", "{}, {} → {}"))
                row["Evaluation in this report"] = shown.format(i18n.tr(r["design"], "analysis"), i18n.tr(r["before"], "reason"),
                                                                i18n.tr(r["after"], "reason"))
            else:
                row["Evaluation in this report"] = i18n.pgettext("cell", "{}: {}").format(i18n.tr(r["status"], "cell"),
                                                                                          i18n.tr(r["reason"], "reason"))
        rows.append(row)
    return pd.DataFrame(rows)


def data_quality(dq: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({NP_("column", "Quarter"): dq["quarter"], NP_("column", "Dataset"): dq["dataset"].str.replace("_", " "),
                         NP_("column", "Rows read"): dq["read"].map(P.fmt_int), NP_("column", "Kept"): dq["kept"].map(P.fmt_int),
                         NP_("column", "Rejected"): dq["rejected"].map(P.fmt_int),
                         NP_("column", "Kept share"): dq["kept_share"].map(lambda x: P.fmt_pct(x, 2))})


def rejections(rej: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows by dataset and reason, one column per quarter."""
    if rej.empty:
        return pd.DataFrame({NP_("column", "Dataset"): [], NP_("column", "Reason"): []})
    wide = rej.pivot_table(index=["dataset", "reason"], columns="quarter", values="rows", aggfunc="sum", fill_value=0)
    wide = wide.reset_index()
    out = pd.DataFrame({NP_("column", "Dataset"): wide["dataset"].str.replace("_", " "),
                        NP_("column", "Reason"): wide["reason"].str.replace("_", " ")})
    for q in [c for c in wide.columns if c not in ("dataset", "reason")]:
        out[q] = wide[q].map(P.fmt_int)
    return out
