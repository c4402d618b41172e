"""Report layer for the sampling design and the tracking across quarters: sentences, tables, figures.

Formats and words only; every number comes from :mod:`study.report.design_analysis` (which computes with
:mod:`study.stats.design` and :mod:`study.stats.trend`). Each sentence checks its premise on the data it
states (a trend is called rising only when its interval lies above zero; a month is called out of
control only when it is outside its limits; the trend section exists only with three quarters or
more, the change section with two).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import i18n
from study import metrics as mx
from study.i18n import _, pgettext
from study.report import design_analysis as dsa
from study.report import figures as F
from study.report import present as P
from study.report import tables as T
from study.stats import trend

__all__ = ["has_trend", "has_change", "weighting_sentence", "weighting_table", "trend_summary", "quarters_table",
           "dimension_quarters_table", "changes_table", "changes_caption", "trend_figure", "control_chart_figure", "chart_sentences",
           "chart_baseline_sentence",
           "monthly_table", "target_progress_table", "target_progress_caption", "methods_sentences"]

#: The headline metrics the tracking shows, in order (those the study measures).
TRACKED = ("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2, "complaint_rate", "sqi", "waiting_minutes",
           "handling_minutes")


def _history(ctx):
    return dsa.history(ctx)


def has_change(ctx) -> bool:
    h = _history(ctx)
    return h is not None and len(h["quarters"]) >= 2


def has_trend(ctx) -> bool:
    h = _history(ctx)
    return h is not None and len(h["quarters"]) >= 3


def _label(ctx, metric: str) -> str:
    return ctx.study.label(metric)


def _tracked(ctx, per_quarter: pd.DataFrame) -> list[str]:
    present = set(per_quarter["metric"])
    return [m for m in TRACKED if m in present]


# ---------------------------------------------------------------------------------------------
# The weighting rule and the side-by-side table (methods appendix)


def weighting_sentence(ctx) -> P.Md:
    """Which estimates the report uses, and why (and, when study.yml says so, the strata beside a weight column and
    the raking of the weights to known margins, which the sentence below alone left unsaid)."""
    base = _weighting_sentence(ctx)
    sp = ctx.study.sampling
    if sp is None:
        return base
    words = {"branch_id": _("branch"), "segment": _("segment"), "channel": _("channel")}
    parts = [base]
    if sp.weight is not None and sp.strata is not None:
        parts.append(P.md("Their standard errors treat the sample as stratified by {}.", words[sp.strata]))
    if sp.rake:
        parts.append(P.md("The weights are then calibrated to the known shares of {} given in the study definition "
                          "(raking; with one margin, post-stratification).", _and([words[m.column] for m in sp.rake])))
    return P.join(parts)


def _weighting_sentence(ctx) -> P.Md:
    sp = ctx.study.sampling
    if sp is None:
        return P.md("The study declares no sampling design (study.yml `sampling`), so every estimate treats the "
                    "questionnaires as a simple random sample: unweighted means and shares.")
    if sp.weight is not None:
        return P.md("Bank-wide survey figures are weighted by the survey's weight column {} and their intervals and tests "
                    "are design-based (Taylor linearisation, R survey's conventions); the unweighted figures are shown "
                    "beside them in the table below.", sp.weight)
    strata = {"branch_id": _("branch"), "segment": _("segment"), "channel": _("channel")}[sp.strata]
    basis = _("customers") if sp.basis == "customers" else _("visits")
    return P.md("The sample is stratified by {}: each respondent stands for the {} of the stratum divided by its respondents, "
                "so bank-wide survey figures are weighted and their intervals and tests are design-based (Taylor "
                "linearisation with the finite population correction, R survey's conventions). Unweighted figures would "
                "give every stratum the same say whatever its size; they are shown beside the weighted ones in the table "
                "below. Figures within one stratum are the same either way.", strata, basis)


def weighting_table(ctx) -> pd.DataFrame:
    """Weighted and unweighted estimates of the current quarter, with the design effect and effective n."""
    t = dsa.weighting_table(ctx)
    rows = []
    for r in t.to_dict("records"):
        m = r["metric"]
        rows.append({pgettext("column", "Figure"): _label(ctx, m), pgettext("column", "Weighted"): T.value(m, r["estimate"], ctx.study),
                     pgettext("column", "Weighted CI"): _interval(m, r["ci_low"], r["ci_high"], ctx.study),
                     pgettext("column", "Unweighted"): T.value(m, r["unweighted"], ctx.study),
                     pgettext("column", "Unweighted CI"): _interval(m, r["unweighted_ci_low"], r["unweighted_ci_high"], ctx.study),
                     pgettext("column", "Difference"): T.change(m, r["difference"], ctx.study),
                     pgettext("column", "Design effect"): P.fmt_num(r["deff"], 2), pgettext("column", "Effective n"): P.fmt_int(r["n_eff"]),
                     "n": P.fmt_int(r["n"])})
    return pd.DataFrame(rows)


def _interval(metric, lo, hi, study) -> str:
    if lo is None or pd.isna(lo):
        return P.DASH
    return f"[{T.value(metric, lo, study)}, {T.value(metric, hi, study)}]"


# ---------------------------------------------------------------------------------------------
# Executive summary and current state


def _quarter_span(h) -> tuple[str, str, int]:
    return i18n.quarter(h["quarters"][0]), i18n.quarter(h["quarters"][-1]), len(h["quarters"])


def _rate(metric, x, study) -> str:
    return T.change(metric, x, study)


def trend_summary(ctx) -> P.Md | None:
    """The trend of the headline survey figures and the months out of control (three quarters or more)."""
    if not has_trend(ctx):
        return None
    h = _history(ctx)
    first, last, n = _quarter_span(h)
    slopes = h["slopes"].set_index("metric")
    parts = []
    for m in ("csat_mean_0_100", "nps", mx.RECOMMEND_TOP2, "csat_top2"):
        if m not in slopes.index:
            continue
        s = slopes.loc[m]
        ci = _interval_change(m, s["ci_low"], s["ci_high"], ctx.study)
        if s["ci_low"] > 0:
            parts.append(P.md("{} rose over the {} quarters from {} to {}: {} per quarter ({} CI {}).", _label(ctx, m),
                              n, first, last, _rate(m, s["slope"], ctx.study), ctx.level_pct, ci))
        elif s["ci_high"] < 0:
            parts.append(P.md("{} fell over the {} quarters from {} to {}: {} per quarter ({} CI {}).", _label(ctx, m),
                              n, first, last, _rate(m, s["slope"], ctx.study), ctx.level_pct, ci))
        else:
            parts.append(P.md("{} shows no clear linear trend over the {} quarters from {} to {} (slope {} per quarter, {} CI {}).",
                              _label(ctx, m), n, first, last, _rate(m, s["slope"], ctx.study), ctx.level_pct, ci))
    flagged = chart_sentences(ctx)
    return P.join(parts + flagged)


def _interval_change(metric, lo, hi, study) -> str:
    return f"[{T.change(metric, lo, study)}, {T.change(metric, hi, study)}]"


def chart_sentences(ctx) -> list[P.Md]:
    """The months outside the control limits: one sentence per side and set of months, naming the figures
    and the months the limits rest on (none outside: one sentence saying so)."""
    h = _history(ctx)
    tr = ctx.study.tracking
    if h is None or tr is None or h["charts"].empty or h["charts"]["lcl"].isna().all():
        return []
    ch = h["charts"]
    groups: dict[tuple, list[str]] = {}
    # the figure (control_chart_figure) draws the survey figures only: a sentence on another chart (the queue log's
    # individuals charts) says it is not drawn and where its values are, not "below" a figure that lacks it
    drawn = ("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2)
    for metric, g in ch[ch["out_of_control"]].groupby("metric", sort=False):
        used = ch[(ch["metric"] == metric) & ch["used"]]["month"]
        for side, gs in g.groupby("side"):
            key = (metric not in drawn, tuple(sorted(gs["month"])), side, i18n.month(used.min()), i18n.month(used.max()))
            groups.setdefault(key, []).append(_label(ctx, metric))
    out = []
    for (undrawn, months, side, b0, b1), names in sorted(groups.items()):
        if undrawn and side == "below":
            out.append(P.md("In {}, the monthly mean of {} in the queue log fell below its lower control limit (an "
                            "individuals chart, not drawn above; limits from the months {} to {}; the monthly values are in "
                            "the table of monthly statistics).", _and([i18n.month(x) for x in months]), _and(names), b0, b1))
        elif undrawn:
            out.append(P.md("In {}, the monthly mean of {} in the queue log rose above its upper control limit (an "
                            "individuals chart, not drawn above; limits from the months {} to {}; the monthly values are in "
                            "the table of monthly statistics).", _and([i18n.month(x) for x in months]), _and(names), b0, b1))
        elif side == "below":
            out.append(P.md("In {}, {} fell below the lower control limit (limits from the months {} to {}).",
                            _and([i18n.month(x) for x in months]), _and(names), b0, b1))
        else:
            out.append(P.md("In {}, {} rose above the upper control limit (limits from the months {} to {}).",
                            _and([i18n.month(x) for x in months]), _and(names), b0, b1))
    if not out:
        judged = ch[ch["lcl"].notna()]
        out.append(P.md("No month from {} to {} lay outside the control limits set on the months of {} to {}.",
                        i18n.month(judged["month"].min()), i18n.month(judged["month"].max()),
                        *(i18n.quarter(q) for q in tr.chart_baseline)))
    return out


def chart_baseline_sentence(ctx) -> P.Md | None:
    """Why there are no control charts although the study names a baseline period: fewer than two months of survey
    data fall in it (a chart_baseline outside the quarters prepared). None when limits exist or nothing is tracked."""
    h = _history(ctx)
    tr = ctx.study.tracking
    if h is None or tr is None:
        return None
    ch = h["charts"]
    survey = ch[ch["metric"].isin(("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2))] if len(ch) else ch
    if len(survey) and survey["lcl"].notna().any():
        return None
    return P.md("No control charts: fewer than two months of survey data fall in the baseline period {} to {} that the "
                "study definition names (tracking.chart_baseline), so no control limits can be set; the monthly values "
                "are in the table below.", *(i18n.quarter(q) for q in tr.chart_baseline))


def _and(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"; "甲、乙和丙" in Chinese (CLDR, :func:`study.i18n.join_list`)."""
    items = list(dict.fromkeys(items))
    return "".join(items) if len(items) <= 1 else str(i18n.join_list(items))


def quarters_table(ctx) -> pd.DataFrame:
    """One row per quarter: each tracked figure with its interval (design-based for survey figures)."""
    h = _history(ctx)
    pq = h["per_quarter"]
    rows = []
    for q in h["quarters"]:
        row = {pgettext("column", "Quarter"): q}
        for m in _tracked(ctx, pq):
            r = pq[(pq["quarter"] == q) & (pq["metric"] == m)]
            if r.empty:
                row[_label(ctx, m)] = P.DASH
                continue
            r = r.iloc[0]
            ci = "" if pd.isna(r["ci_low"]) else " " + _interval(m, r["ci_low"], r["ci_high"], ctx.study)
            row[_label(ctx, m)] = T.value(m, r["estimate"], ctx.study) + ci
        n = pq[(pq["quarter"] == q) & (pq["source"] == "survey")]["n"]
        row["n"] = P.fmt_int(n.max()) if len(n) else P.DASH
        rows.append(row)
    return pd.DataFrame(rows)


def dimension_quarters_table(ctx) -> pd.DataFrame:
    """Dimension scores (0-100) per quarter, one row per dimension."""
    h = _history(ctx)
    pq = h["per_quarter"]
    rows = []
    for d in ctx.study.dimension_ids:
        row = {pgettext("column", "Dimension"): _label(ctx, d)}
        for q in h["quarters"]:
            r = pq[(pq["quarter"] == q) & (pq["metric"] == d)]
            row[q] = T.value(d, r["estimate"].iloc[0], ctx.study) if len(r) else P.DASH
        rows.append(row)
    return pd.DataFrame(rows)


def changes_table(ctx) -> pd.DataFrame:
    """Consecutive-quarter changes of the tracked figures with Holm-adjusted p-values."""
    h = _history(ctx)
    ch = h["changes"]
    rows = []
    for m in _tracked(ctx, h["per_quarter"]):
        for r in ch[ch["metric"] == m].to_dict("records"):
            rows.append({pgettext("column", "Figure"): _label(ctx, m), pgettext("column", "From"): r["before"], pgettext("column", "To"): r["after"],
                         pgettext("column", "Change"): T.change(m, r["difference"], ctx.study),
                         pgettext("column", "CI"): T.ci(m, r["ci_low"], r["ci_high"], ctx.study),
                         "p": P.fmt_p(r["p"], prefix=False), pgettext("column", "p (Holm)"): P.fmt_p(r["p_holm"], prefix=False)})
    return pd.DataFrame(rows)


def missing_quarters(ctx) -> list[str]:
    """The calendar quarters between the first and the last quarter of the history that have no data."""
    qs = (_history(ctx) or {}).get("quarters") or []   # no history (one quarter): nothing missing
    if not qs:
        return []
    nums = {trend._quarter_number(q) for q in qs}
    lo, hi = min(nums), max(nums)
    return [f"{n // 4}Q{n % 4 + 1}" for n in range(lo, hi + 1) if n not in nums]


def changes_caption(ctx) -> str:
    """The caption of :func:`changes_table`: with a quarter missing from the data, the changes are between the
    consecutive quarters present, and the caption names the gap."""
    gap = missing_quarters(ctx)
    if not gap:
        return _("Changes between consecutive quarters, p-values adjusted by Holm's method")
    sep = "、" if i18n.language() == "zh" else ", "
    return i18n.ngettext("Changes between consecutive quarters present ({} has no data), p-values adjusted by Holm's "
                         "method",
                         "Changes between consecutive quarters present ({} have no data), p-values adjusted by Holm's "
                         "method", len(gap)).format(sep.join(i18n.quarter(q) for q in gap))


def trend_figure(ctx):
    """The tracked survey figures per quarter with their intervals, one panel per figure."""
    h = _history(ctx)
    pq = h["per_quarter"]
    metrics = [m for m in ("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2) if m in set(pq["metric"])]
    fig = F.Figure(figsize=(F.TEXT_WIDTH, 2.4 * len(metrics)), layout="constrained")
    F.FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    # quarters at their calendar distance: a quarter missing from the data leaves a gap, as the slope counts it
    x = np.array([trend._quarter_number(q) for q in h["quarters"]], dtype=float)
    for ax, m in zip(axes, metrics):
        s = pq[pq["metric"] == m].set_index("quarter").reindex(h["quarters"])
        scale = 100.0 if mx.lookup(m, ctx.study).style == "pct" else 1.0
        est, lo, hi = (s[c].to_numpy(float) * scale for c in ("estimate", "ci_low", "ci_high"))
        ax.errorbar(x, est, yerr=[est - lo, hi - est], fmt="o-", color=F.OKABE_ITO["blue"], ecolor=F.OKABE_ITO["blue"],
                    elinewidth=1.4, markersize=5, capsize=0, linewidth=1.2)
        ax.set_ylabel(_axis_label(ctx, m, scale, 2.4))
    axes[-1].set_xticks(x, h["quarters"])
    axes[-1].set_xlabel(pgettext("axis", "Quarter"))
    return fig


def control_chart_figure(ctx):
    """Control charts of the monthly headline survey figures: values, centre line, limits, months out of control."""
    h = _history(ctx)
    ch = h["charts"]
    metrics = [m for m in ("csat_mean_0_100", "csat_top2", "nps", mx.RECOMMEND_TOP2) if m in set(ch["metric"])]
    if not metrics or ch.loc[ch["metric"].isin(metrics), "lcl"].isna().all():   # no limits: not a control chart
        return None
    fig = F.Figure(figsize=(F.TEXT_WIDTH, 2.3 * len(metrics)), layout="constrained")
    F.FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    months = sorted(ch["month"].unique())
    pos = {m: i for i, m in enumerate(months)}
    for ax, m in zip(axes, metrics):
        g = ch[ch["metric"] == m]
        scale = 100.0 if mx.lookup(m, ctx.study).style == "pct" else 1.0
        xx = g["month"].map(pos).to_numpy()
        # limits are drawn from the first baseline month on: earlier months are not judged against them
        judged = (g["month"] >= g.loc[g["in_baseline"], "month"].min()).to_numpy() if g["in_baseline"].any() else np.zeros(len(g), bool)
        lim = {k: np.where(judged, g[k].to_numpy(float) * scale, np.nan) for k in ("ucl", "lcl", "centre")}
        ax.plot(xx, g["value"] * scale, "o-", color=F.OKABE_ITO["blue"], markersize=3.5, linewidth=1)
        ax.step(xx, lim["ucl"], where="mid", color=F.REFERENCE, linewidth=0.9, linestyle="--")
        ax.step(xx, lim["lcl"], where="mid", color=F.REFERENCE, linewidth=0.9, linestyle="--")
        ax.plot(xx, lim["centre"], color=F.MUTED, linewidth=0.9)
        bad = g["out_of_control"].to_numpy(bool)
        ax.plot(xx[bad], g["value"].to_numpy(float)[bad] * scale, "o", color=F.OKABE_ITO["vermillion"], markersize=6)
        ax.set_ylabel(_axis_label(ctx, m, scale, 2.3))
    step = max(1, len(months) // 8)
    axes[-1].set_xticks(range(0, len(months), step), i18n.month_ticks(months[::step]))
    axes[-1].set_xlabel(pgettext("axis", "Month"))
    return fig


def _axis_label(ctx, metric: str, scale: float, panel_inches: float) -> str:
    """A panel's y label that fits beside its panel (stacked panels' labels ran into each other) and names its unit
    once ("Overall satisfaction (0-100) (0-100)" repeated the unit the label already has)."""
    unit = "%" if scale == 100.0 else _unit(ctx, metric)
    label = _label(ctx, metric)
    # width in half-width characters that fits the panel's height at the axis-label size (F.label_text's measure)
    limit = int(panel_inches * 72 * 0.85 / (0.5 * 9.5))   # 9.5 pt: the theme's axes.labelsize; ~0.5 em a character
    if unit and unit not in label:
        label = pgettext("cell", "{} ({})").format(label, unit)   # （%） in Chinese
    return F.axis_title(label, limit)   # wrapped onto a second line when long, never cut


def _unit(ctx, metric: str) -> str:
    m = mx.lookup(metric, ctx.study)
    return m.unit_zh if i18n.language() == "zh" and m.unit_zh else m.unit


def monthly_table(ctx) -> pd.DataFrame:
    """Monthly statistics: respondents and the headline figures per month (the documents' rhythm)."""
    h = _history(ctx)
    mt = h["monthly"]
    metrics = [m for m in TRACKED if m in set(mt["metric"])]
    rows = []
    for month in sorted(mt["month"].unique()):
        # "2024年11月" in Chinese; the English ISO month with a non-breaking hyphen, so it stays on one line
        row = {pgettext("column", "Month"): i18n.month(month).replace("-", "\u2011")}
        sub = mt[mt["month"] == month].set_index("metric")
        survey_n = sub.loc[[m for m in metrics if m in sub.index and m not in trend.PROCESS_MEANS], "n"]
        row[pgettext("column", "Respondents")] = P.fmt_int(survey_n.max()) if len(survey_n) else P.DASH
        hidden = month in h.get("suppressed_months", ())   # fewer respondents than min_cell_size (trend.small_months)
        for m in metrics:
            row[_label(ctx, m)] = (P.DASH if m not in sub.index else "suppressed" if hidden and m not in trend.PROCESS_MEANS
                                   else T.value(m, sub.loc[m, "value"], ctx.study))
        rows.append(row)
    return pd.DataFrame(rows)


def target_progress_table(ctx) -> pd.DataFrame:
    """Each target per quarter: the estimate (a change target: the change from the baseline quarter) and the verdict."""
    h = _history(ctx)
    tp = h["targets"]
    rows = []
    for t in ctx.study.targets:
        g = tp[tp["target"] == t.id]
        if g.empty:
            continue
        base = T.target_formatter({"metric": t.metric, "kind": t.kind}, ctx.study)
        row = {pgettext("column", "Target"): i18n.pick(t, "label")}
        for r in g.to_dict("records"):
            # enough decimals that an estimate just off the threshold is not written as the threshold
            e = T.digits_apart(base, [r["estimate"]], [t.value])
            row[r["quarter"]] = pgettext("cell", "{} ({})").format(base(r['estimate'], e), _verdict(r['verdict']))
        rows.append(row)
    out = pd.DataFrame(rows)
    quarters = sorted(c for c in out.columns if c != pgettext("column", "Target"))
    return out[[pgettext("column", "Target"), *quarters]].fillna(P.DASH) if len(out) else out


def target_progress_caption(ctx) -> str:
    """The caption of :func:`target_progress_table`, true for the targets it shows."""
    tp = _history(ctx)["targets"]
    if (tp["kind"] != "level").any():
        return _("Progress towards the targets per quarter (change targets: the change from {})").format(
            i18n.quarter(ctx.baseline_quarter))
    return _("Progress towards the level targets per quarter")


def _verdict(v: str) -> str:
    return {"met": pgettext("cell", "met"), "not met": pgettext("cell", "not met"), "undecided": pgettext("cell", "undecided"),
            "not tested": pgettext("cell", "not tested")}.get(v, v)


def methods_sentences(ctx) -> list[P.Md]:
    """How the tracking is computed (methods appendix)."""
    out = [P.md("Trend: the least-squares slope of the quarterly estimates on the quarter number; the quarters are "
                "independent samples, so its variance is the sum of the squared weights times the squared standard errors "
                "of the quarterly estimates. Changes between consecutive quarters: design-based t tests of two independent "
                "samples, p-values adjusted by Holm's method over the comparisons of each figure.")]
    gap = missing_quarters(ctx)
    if gap:   # the premise: a quarter between the first and the last has no data
        sep = "、" if i18n.language() == "zh" else ", "
        out.append(P.nmd("{} has no data: the change across it compares the quarters on either side, and the slope counts "
                         "the quarters at their calendar distance.",
                         "{} have no data: a change across them compares the quarters on either side, and the slope "
                         "counts the quarters at their calendar distance.", len(gap), sep.join(i18n.quarter(q) for q in gap)))
    tr = ctx.study.tracking
    if tr is not None and ctx.study.sampling is not None:
        out.append(P.md("Control charts (Montgomery, Introduction to Statistical Quality Control, ch. 6-7): a p-chart for shares, "
                        "an X-bar chart for means, an individuals chart for the queue log's monthly means; limits at three "
                        "standard errors from the months of {} to {} (months outside them set aside and the limits "
                        "recomputed). Survey values are weighted with each quarter's design weights, the limits' centre is the "
                        "weighted mean of the baseline months, and a month's subgroup size is its effective sample size "
                        "((Σw)²/Σw², Kish) in place of its respondents.",
                        i18n.quarter(tr.chart_baseline[0]), i18n.quarter(tr.chart_baseline[1])))
    elif tr is not None:
        out.append(P.md("Control charts (Montgomery, Introduction to Statistical Quality Control, ch. 6-7): a p-chart for shares, "
                        "an X-bar chart for means with the month's respondents as the subgroup, an individuals chart for the "
                        "queue log's monthly means; limits at three standard errors from the months of {} to {} (months "
                        "outside them set aside and the limits recomputed), charted values unweighted.",
                        i18n.quarter(tr.chart_baseline[0]), i18n.quarter(tr.chart_baseline[1])))
    hidden = (_history(ctx) or {}).get("suppressed_months", [])
    months = (_history(ctx) or {}).get("monthly")
    light = (months is not None and "n_eff" in months
             and bool((months["month"].isin(hidden) & ~months["metric"].isin(trend.PROCESS_MEANS)
                       & (months["n_eff"] < 2)).any()))
    if hidden and light:   # trend.small_months: also a weighted month of effective size below 2
        out.append(P.md("Months with fewer than {} respondents or an effective sample size below 2 (one respondent's "
                        "weight outweighing the others), and beside them the smallest other months of their quarter "
                        "(a quarter's total less the months shown would give them back), are suppressed in the monthly "
                        "statistics and left out of the control charts: {}.", P.fmt_int(ctx.study.min_cell_size),
                        _and([i18n.month(m) for m in hidden])))
    elif hidden:
        out.append(P.md("Months with fewer than {} respondents, and beside them the smallest other months of their quarter "
                        "(a quarter's total less the months shown would give them back), are suppressed in the monthly "
                        "statistics and left out of the control charts: {}.", P.fmt_int(ctx.study.min_cell_size),
                        _and([i18n.month(m) for m in hidden])))
    return out
