"""Report layer for the design-based driver regression and effects: sentences and tables.

Formats and words only; the numbers come from :mod:`study.report.design_analysis` (which computes with
:mod:`study.stats.design`). Every text here is shown only where the study declares its sampling design
(study.yml ``sampling``) and the numbers it describes were computed on that design.
"""

from __future__ import annotations

import pandas as pd

from study import i18n
from study.i18n import _, pgettext
from study.report import design_analysis as dsa
from study.report import present as P
from study.report import tables as T

__all__ = ["driver_fit_sentence", "regression_notes", "has_pilot_control", "pilot_control_table", "pilot_control_notes",
           "did_note", "before_after_note", "monthly_notes", "methods_sentences", "regression_comparison_table", "did_comparison_table"]


def _variance_phrase(ctx) -> str:
    """How the design's standard errors are computed, true for the study's design."""
    sp = ctx.study.sampling
    if sp.strata is not None and sp.weight is None:
        return _("Taylor linearisation with the strata and the finite population correction")
    if sp.strata is not None:
        return _("Taylor linearisation with the strata")
    return _("Taylor linearisation")


def driver_fit_sentence(k: int, fit) -> P.Md:
    """The driver regression's fit on the design: weighted R², the design-based Wald F of all dimensions."""
    values = (P.fmt_num(fit["r2"], 2, leading_zero=False), P.fmt_num(fit["adj_r2"], 2, leading_zero=False),
              int(fit["f_df1"]), int(fit["f_df2"]), P.fmt_num(fit["f"], 1), P.fmt_p(fit["f_p"]), P.fmt_int(fit["n"]))
    if k > 1:
        return P.md("The {} dimension scores explain R² = {} of the weighted variance of overall satisfaction (adjusted {}; "
                    "design-based Wald F({}, {}) = {}, {}, n = {}).", _number(k), *values)
    return P.md("The dimension score explains R² = {} of the weighted variance of overall satisfaction (adjusted {}; "
                "design-based Wald F({}, {}) = {}, {}, n = {}).", *values)


def _number(k: int) -> str:
    from study.report.text.words import number_words

    return number_words(k)


def regression_notes(ctx, drv: dict) -> list[P.Md]:
    """The driver regression table's note when it is fitted on the design."""
    df = drv["model"].terms["df"].iloc[0]
    return [P.md("Survey-weighted least squares on the sampling design: standard errors by {} (R svyglm), t with the "
                 "design's residual degrees of freedom ({}); R² weighted; F the design-based Wald test of all dimensions; "
                 "β standardised with weighted standard deviations; VIF variance inflation of the answers. Appendix A "
                 "shows the unweighted OLS with HC3 standard errors beside it.", _variance_phrase(ctx), P.fmt_int(df))]


def has_pilot_control(ctx) -> bool:
    return not dsa.pilot_control(ctx).empty


def pilot_control_table(ctx) -> pd.DataFrame:
    """Pilot against control branches after each measure's start, design-based (weighted means, t test)."""
    t = dsa.pilot_control(ctx)
    if t.empty:
        return pd.DataFrame()
    names = {m.id: i18n.pick(m, "name") for m in ctx.study.measures}
    several = t["measure"].nunique() > 1
    rows = []
    for r in t.to_dict("records"):
        m = r["metric"]
        row = {pgettext("column", "Measure"): names[r["measure"]]} if several else {}
        row.update({pgettext("column", "Metric"): T.metric_label(m, ctx.study),
                    pgettext("column", "Pilot"): T.value(m, r["pilot"], ctx.study),
                    pgettext("column", "Control"): T.value(m, r["control"], ctx.study),
                    pgettext("column", "Difference"): T.change(m, r["difference"], ctx.study),
                    f"{ctx.level_pct} CI": T.ci(m, r["ci_low"], r["ci_high"], ctx.study),
                    "t": P.fmt_num(r["t"], 2), "df": P.fmt_int(r["df"]), "p": P.fmt_p(r["p"], prefix=False),
                    "n": f"{P.fmt_int(r['n_pilot'])} / {P.fmt_int(r['n_control'])}"})
        rows.append(row)
    return pd.DataFrame(rows)


def pilot_control_notes(ctx) -> list[str]:
    return [_("Weighted means of the respondents interviewed on or after each measure's start in its pilot and in its "
              "control branches; difference = pilot − control, design-based t test with its degrees of freedom (R svyttest "
              "on the quarter's sampling design, the other branches left out as a domain); n = pilot / control "
              "respondents. A comparison of levels, not the measure's effect: the branches may have differed before the "
              "start, which the difference-in-differences takes out.")]


def did_note(ctx, ev: pd.DataFrame | None) -> str:
    """The DiD table's note on the survey figures estimated on the design ("" when none is)."""
    if ev is None or ev.empty or not ev["test"].eq("did_design").any():
        return ""
    return _("Survey figures (standard errors: design-based): the weighted regression of the figure on pilot × after over "
             "the two quarters' stacked sampling design, strata nested in the quarters, with the finite population "
             "correction where population sizes are given (R svyglm); t with the design's residual degrees of freedom; "
             "this p is their headline p. Why strata and not branch clusters: Appendix A.")


def before_after_note(ctx, ev: pd.DataFrame | None, kind: str) -> str:
    """A before/after table's note on the survey figures tested on the design ("" when none is)."""
    if ev is None or ev.empty or not ((ev["analysis"] == kind) & ev["test"].eq(dsa.DESIGN_TEST)).any():
        return ""
    return _("Survey figures: weighted means, and the design-based t test of after against before on the two quarters' "
             "stacked sampling design with the group's branches as a domain (R svyttest), its degrees of freedom the "
             "design's; no effect size. The rules choosing the other tests apply to the queue log's figures.")


def monthly_notes(ctx) -> list[str]:
    """The monthly table's note: its survey figures are weighted when the study declares its design."""
    if not dsa.uses_design(ctx):
        return []
    return [_("Survey figures weighted with each quarter's design weights (the values the control charts watch); "
              "respondents counted.")]


def methods_sentences(ctx) -> list[P.Md]:
    """The methods appendix on the design-based driver regression and effects, and on what stays unweighted."""
    if not dsa.uses_design(ctx):
        return []
    out = [P.md("Driver regression: survey-weighted least squares on the sampling design (R svyglm), standard errors by "
                "{}; the relative importance (LMG) decomposes the weighted R², with a bootstrap that resamples within the "
                "strata.", _variance_phrase(ctx))]
    if ctx.study.measures:
        out.append(P.md("Before/after in the pilot and in the control branches, survey figures: the design-based t test of "
                        "after against before on the two quarters' samples stacked into one design (strata nested in the "
                        "quarters), the group's branches as a domain (R svyttest); the rules choosing the headline test apply "
                        "to the queue log's figures."))
        out.append(P.md("Difference-in-differences of survey figures: the weighted regression of the figure on pilot, after "
                        "and pilot × after over the two quarters' samples stacked into one design whose strata are nested in "
                        "the quarters (R svyglm), so its variance is the sampling error of the comparison, known from the "
                        "design. Treatment is assigned by branch, and the branches are the strata of the sample: a branch "
                        "cannot be both stratum and cluster. Clustering by branch instead would estimate the variance from "
                        "the handful of branches a pilot has, too few to rely on (it can come out below the sampling error "
                        "itself). The design-based variance does not hold branch-to-branch differences in change that have "
                        "nothing to do with the measure; the pre-trend test and the unweighted DiD clustered by branch with "
                        "its wild bootstrap, shown beside it below, speak to those."))
        out.append(P.md("The queue log records every ticket: it is a census of the branches' tickets, not a sample, so its "
                        "figures (waiting, handling and cycle time, first-pass yield, service level), their "
                        "difference-in-differences and the interrupted time series are unweighted, as they should be; their "
                        "uncertainty is the process's variation over time, which the branch-clustered standard errors and "
                        "the Newey–West standard errors of the time series model."))
    return out


def regression_comparison_table(ctx, drv: dict) -> pd.DataFrame:
    """The driver regression on the design beside the unweighted OLS (HC3)."""
    w, u = drv["model"].terms, drv["model_unweighted"].terms
    rows = []
    for a, b in zip(w.to_dict("records"), u.to_dict("records")):
        rows.append({pgettext("column", "Dimension (0-100 score)"): ctx.study.label(a["term"]),
                     pgettext("column", "Weighted b"): P.fmt_num(a["coef"], 4),
                     pgettext("column", "SE (design)"): P.fmt_num(a["se"], 4),
                     pgettext("column", "Weighted p"): P.fmt_p(a["p"], prefix=False),
                     pgettext("column", "Unweighted b"): P.fmt_num(b["coef"], 4),
                     pgettext("column", "SE (HC3)"): P.fmt_num(b["se"], 4),
                     pgettext("column", "Unweighted p"): P.fmt_p(b["p"], prefix=False),
                     pgettext("column", "Difference"): P.fmt_num(a["coef"] - b["coef"], 4, sign=True)})
    fw, fu = drv["model"].fit, drv["model_unweighted"].fit
    rows.append({pgettext("column", "Dimension (0-100 score)"): "R²", pgettext("column", "Weighted b"): P.fmt_num(fw["r2"], 3),
                 pgettext("column", "SE (design)"): P.DASH, pgettext("column", "Weighted p"): P.DASH,
                 pgettext("column", "Unweighted b"): P.fmt_num(fu["r2"], 3), pgettext("column", "SE (HC3)"): P.DASH,
                 pgettext("column", "Unweighted p"): P.DASH,
                 pgettext("column", "Difference"): P.fmt_num(fw["r2"] - fu["r2"], 3, sign=True)})
    return pd.DataFrame(rows)


def did_comparison_table(ctx, ev: pd.DataFrame | None) -> pd.DataFrame:
    """The survey figures' DiD on the design beside the unweighted, branch-clustered DiD."""
    if ev is None or ev.empty or not ev["test"].eq("did_design").any():
        return pd.DataFrame()
    e = ev[ev["test"].eq("did_design")]
    names = {m.id: i18n.pick(m, "name") for m in ctx.study.measures}
    several = e["measure"].nunique() > 1
    rows = []
    for r in e.to_dict("records"):
        m = r["metric"]
        row = {pgettext("column", "Measure"): names[r["measure"]]} if several else {}
        row.update({pgettext("column", "Metric"): T.metric_label(m, ctx.study),
                    pgettext("column", "Weighted"): T.change(m, r["estimate"], ctx.study),
                    pgettext("column", "Weighted CI"): T.ci(m, r["ci_low"], r["ci_high"], ctx.study),
                    pgettext("column", "Weighted p"): P.fmt_p(r["p"], prefix=False),
                    pgettext("column", "Unweighted"): T.change(m, r["unweighted_estimate"], ctx.study),
                    pgettext("column", "Unweighted CI"): T.ci(m, r["unweighted_ci_low"], r["unweighted_ci_high"], ctx.study),
                    pgettext("column", "Unweighted p"): P.fmt_p(r["unweighted_p"], prefix=False)})
        rows.append(row)
    return pd.DataFrame(rows)
