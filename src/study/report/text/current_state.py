"""Chapter 2, current state: reliability and validity, satisfaction, drivers, competitors, process times and the SQI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import metrics as mx
from study.i18n import _
from study.report import analysis
from study.report import present as P
from study.report.analysis import Context
from study.report.text.rules import SATURATION_HIGH
from study.report.text.words import _and, _comma, _label, _lc, _low, _metric, _q, _reason, _semi, number_words, skipped_sentence

SQI_FORMULA = r"\mathrm{SQI} = \sum_i W_i \, \frac{X_i - X_{\min}}{X_{\max} - X_{\min}}"


def measurement_intro(ctx: Context, meas: dict) -> P.Md:
    st = ctx.study
    n_rev = len(st.reverse_items)
    n_items, n_dims = len(st.item_ids), len(st.dimension_ids)
    items = P.nmd("{} item", "{} items", n_items, P.fmt_int(n_items))
    dims = P.nmd("{} dimension", "{} dimensions", n_dims, P.fmt_int(n_dims))
    if n_rev:
        text = P.md("The questionnaire has {} in {} ({} recoded before the analysis).", items, dims,
                    P.nmd("{} reverse-keyed item", "{} reverse-keyed items", n_rev, P.fmt_int(n_rev)))
    else:
        text = P.md("The questionnaire has {} in {}.", items, dims)
    if analysis.is_skipped(meas):
        return P.join([text, skipped_sentence(_("The reliability and validity analysis"), _reason(meas["skipped"]))])
    k = meas["kmo"]
    if k is None:
        return P.join([text, P.md("KMO and Bartlett's test need more complete questionnaires than items and are left out.")])
    values = (P.fmt_num(k["kmo"], 2, leading_zero=False), P.fmt_int(k["df"]), P.fmt_num(k["chi2"], 1), P.fmt_p(k["p"]),
              P.fmt_int(k["n"]))
    if k["kmo"] >= 0.6 and k["p"] < st.alpha:
        return P.join([text, P.md("The items suit factor analysis: KMO = {}, Bartlett's test χ²({}) = {}, {}, n = {}.",
                                  *values)])
    return P.join([text, P.md("The items do not clearly suit factor analysis: KMO = {}, Bartlett's test χ²({}) = {}, {}, "
                              "n = {}.", *values)])


def reliability_notes(ctx: Context) -> list[P.Md]:
    return [P.md("α: Cronbach's alpha with the Feldt interval; ω: McDonald's omega (one-factor ML model per dimension); CR and "
                 "AVE from the standardised loadings of the measurement model. Thresholds: α and CR ≥ .70, AVE ≥ .50 "
                 "(Appendix A).")]


def fit_notes(ctx: Context, meas: dict) -> list[P.Md]:
    k = len(ctx.study.dimension_ids)
    if k == 1:
        return [P.md("The dimension as one factor, maximum likelihood, n = {}; RMSEA with its 90 % interval. Conventions of "
                     "lavaan (χ² = N·F_ML).", P.fmt_int(meas["cfa"].n))]
    return [P.md("All {} dimensions as correlated factors, maximum likelihood, n = {}; RMSEA with its 90 % interval. "
                 "Conventions of lavaan (χ² = N·F_ML).", k, P.fmt_int(meas["cfa"].n))]


def improper_text(ctx: Context, improper: list, plain: bool = False):
    """What makes a CFA solution improper: "negative residual variance of q3; ..." (Markdown, or ``plain`` text)."""
    items = [w for k, w in improper if k == "negative_residual_variance"]
    factors = [ctx.study.label(w) for k, w in improper if k == "negative_factor_variance"]
    out = []
    if items:
        out.append(_("negative residual variance of {}").format(_comma(items, plain=True)) if plain else
                   P.md("negative residual variance of {}", _and(items)))
    if factors:
        out.append(_("negative variance of the factor {}").format(_comma(factors, plain=True)) if plain else
                   P.md("negative variance of the factor {}", _and(factors)))
    if any(k == "factor_covariance_not_pd" for k, _w in improper):
        out.append(_("factor covariance matrix not positive definite") if plain else
                   P.md("factor covariance matrix not positive definite"))
    return _semi(out, plain=plain)


def validity_sentences(ctx: Context, meas: dict) -> P.Md:
    j = meas["judgements"]
    cfa = meas["cfa"]
    readable = cfa is not None and cfa.admissible
    # CR and AVE of an improper or unconverged solution are not read (lavaan's post-estimation check)
    weak = j[(j["ok"] == False) & (j["statistic"].isin(["alpha", "cr", "ave"] if readable else ["alpha"]))]["what"].unique()  # noqa: E712
    parts = []
    if cfa is None:
        parts.append(skipped_sentence(_("The confirmatory factor analysis"),
                                      _reason(meas.get("cfa_skipped")) if meas.get("cfa_skipped") else _("it is not identified")))
    elif not cfa.converged:
        parts.append(P.md("The confirmatory factor analysis did not converge to a stationary point; its fit, composite "
                          "reliability and AVE are not interpreted."))
    elif cfa.improper:
        parts.append(P.md("The confirmatory factor analysis gives an improper solution (a Heywood case: {}); its fit, "
                          "composite reliability and AVE are not interpreted.", improper_text(ctx, cfa.improper)))
    elif len(cfa.htmt) >= 2:
        h = cfa.htmt.where(~np.eye(len(cfa.htmt), dtype=bool)).stack()
        worst = h.idxmax()
        values = (P.fmt_num(h.max(), 2, leading_zero=False), ctx.study.label(worst[0]), ctx.study.label(worst[1]))
        parts.append(P.md("Discriminant validity: the largest heterotrait–monotrait ratio is {} ({} and {}; below the "
                          "threshold .85).", *values) if h.max() < 0.85 else
                     P.md("Discriminant validity: the largest heterotrait–monotrait ratio is {} ({} and {}; at or above the "
                          "threshold .85).", *values))
    if len(weak):
        parts.append(P.md("Below threshold: {}; scores of these dimensions are less reliable and are read with care (rule "
                          "PROBLEM-SCALE).", _and(ctx.study.label(w) for w in weak)))
    elif readable:
        parts.append(P.md("Every dimension meets the reliability and convergent-validity thresholds."))
    else:
        parts.append(P.md("Every dimension meets the reliability threshold (α ≥ .70)."))
    return P.join(parts)


def satisfaction_sentences(ctx: Context, summary: pd.DataFrame) -> P.Md:
    cur = summary[summary["which"] == "current"].set_index("metric")
    st = ctx.study
    o = st.questionnaire.outcomes.overall_satisfaction
    c = cur.loc["csat_mean_0_100"]
    top2 = (P.fmt_pct(cur.loc["csat_top2", "value"]),
            P.fmt_ci(cur.loc["csat_top2", "ci_low"] * 100, cur.loc["csat_top2", "ci_high"] * 100, 1))
    if (o.scale.min, o.scale.max) == (1, 5) and st.sampling is not None:   # the design-based (logit) interval
        who = P.md("{} are satisfied or very satisfied ({} %, design-based)", *top2)
    elif st.sampling is not None:
        who = P.md("{} answer {}–{} on the {} scale ({} %, design-based)", top2[0],
                   *(f"{v:g}" for v in mx.top2_range(o.scale.min, o.scale.max)), mx.scale_text(o.scale.min, o.scale.max),
                   top2[1])
    elif (o.scale.min, o.scale.max) == (1, 5):
        who = P.md("{} are satisfied or very satisfied ({} %, Wilson)", *top2)
    else:
        who = P.md("{} answer {}–{} on the {} scale ({} %, Wilson)", top2[0],
                   *(f"{v:g}" for v in mx.top2_range(o.scale.min, o.scale.max)), mx.scale_text(o.scale.min, o.scale.max),
                   top2[1])
    parts = [P.md("overall satisfaction is {} of 100 ({})", P.fmt_num(c["value"], 1), P.fmt_ci(c["ci_low"], c["ci_high"], 1)),
             who]
    if "nps" in cur.index:
        parts.append(P.md("the NPS is {} ({})", P.fmt_num(cur.loc["nps", "value"], 1),
                          P.fmt_ci(cur.loc["nps", "ci_low"], cur.loc["nps", "ci_high"], 1)))
    if "recommend_top2" in cur.index:
        parts.append(P.md("{} ({}; an NPS needs the eleven-point recommend scale)", P.fmt_pct(cur.loc["recommend_top2", "value"]),
                          P.md("{}", _low(_metric(ctx, "recommend_top2")))))
    if "complaint_rate" in cur.index:
        parts.append(P.md("{} of respondents complained", P.fmt_pct(cur.loc["complaint_rate", "value"])))
    return P.md("In {}, {} (n = {}).", _q(ctx.quarter), _and(parts), P.fmt_int(c["n"]))


def score_notes(ctx: Context) -> list[P.Md]:
    sc_ = ctx.study.questionnaire.scale
    values = dict(lo=f"{sc_.min:g}", hi=f"{sc_.max:g}", rng=mx.scale_text(sc_.min, sc_.max))
    text = (P.md("Score = (mean of the dimension's items − {lo}) / ({hi} − {lo}) × 100 on the {rng} item scale, "
                 "reverse-keyed items recoded; the convention of the seed report.", **values) if ctx.study.reverse_items else
            P.md("Score = (mean of the dimension's items − {lo}) / ({hi} − {lo}) × 100 on the {rng} item scale; the "
                 "convention of the seed report.", **values))
    if ctx.baseline is not None and ctx.study.sampling is not None:   # scores and changes on the design (design_analysis)
        text = P.join([text, P.md("Scores weighted, change tested on the sampling design; p adjusted by Holm over the "
                                  "dimensions.")])
    elif ctx.baseline is not None:
        text = P.join([text, P.md("Change tested by Welch t; p adjusted by Holm over the dimensions; g = Hedges' g.")])
    return [text]


def suppression_note(ctx: Context) -> list[P.Md]:
    if ctx.study.min_cell_size <= 1:
        return [P.md("No group is suppressed: the study's minimum cell size is 1.")]
    return [P.md("Groups with fewer than {} respondents are suppressed (privacy and precision); when that leaves fewer than two "
                 "suppressed groups or fewer than {} respondents among them, the next smallest groups are suppressed too, so "
                 "that no suppressed figure can be recovered from the all-respondent total.", ctx.study.min_cell_size,
                 ctx.study.min_cell_size)]


def driver_sentences(ctx: Context, drv: dict) -> P.Md:
    if analysis.is_skipped(drv):
        return skipped_sentence(_("The driver analysis of overall satisfaction"), _reason(drv["skipped"]))
    f = drv["model"].fit
    lmg = drv["lmg"].sort_values("rank")
    top = lmg.iloc[0]
    k = int(f["k"])
    values = (P.fmt_num(f["r2"], 2, leading_zero=False), P.fmt_num(f["adj_r2"], 2, leading_zero=False), int(f["f_df1"]),
              int(f["f_df2"]), P.fmt_num(f["f"], 1), P.fmt_p(f["f_p"]), P.fmt_int(f["n"]))
    if f.get("cov_type") == "design":   # fitted on the sampling design (study.yml sampling)
        from study.report import design as design_report

        text = design_report.driver_fit_sentence(k, f)
        if k > 1:
            top_label = _label(ctx, top["predictor"]) if "predictor" in top else top["label"]
            text = P.join([text, P.md("{} is the strongest driver ({} of the explained variance).", top_label,
                                      P.fmt_pct(top["share"])), _vif_sentence(ctx, drv)])
    elif k > 1:
        text = P.md("The {} dimension scores explain R² = {} of the variance of overall satisfaction (adjusted {}, "
                    "F({}, {}) = {}, {}, n = {}).", number_words(k), *values)
        top_label = _label(ctx, top["predictor"]) if "predictor" in top else top["label"]
        text = P.join([text, P.md("{} is the strongest driver ({} of the explained variance).", top_label,
                                  P.fmt_pct(top["share"]))])
        text = P.join([text, _vif_sentence(ctx, drv)])
    else:
        text = P.md("The dimension score explains R² = {} of the variance of overall satisfaction (adjusted {}, "
                    "F({}, {}) = {}, {}, n = {}).", *values)
    o = drv["ologit"]
    if o is not None and k >= 3:
        tau, p = o.agreement["kendall_tau"], o.agreement["kendall_p"]
        sc_ = ctx.study.questionnaire.outcomes.overall_satisfaction.scale
        values = (mx.scale_text(sc_.min, sc_.max), P.fmt_num(tau, 2), P.fmt_p(p))
        if tau >= 1 - 1e-9:   # the same order: with 3 or 4 dimensions even that cannot reach p < α (3 dims: p = 1/3)
            check = P.md("As a robustness check, an ordered logit of the {} answer ranks the drivers in the same order "
                         "(Kendall's τ = {}, {}).", *values)
        elif tau >= 0.7 and pd.notna(p) and p < ctx.study.alpha:
            check = P.md("As a robustness check, an ordered logit of the {} answer ranks the drivers alike (Kendall's τ = {}, "
                         "{}).", *values)
        elif tau > 0 and pd.notna(p) and p < ctx.study.alpha:
            check = P.md("As a robustness check, an ordered logit of the {} answer ranks the drivers in partial agreement "
                         "(Kendall's τ = {}, {}).", *values)
        else:
            check = P.md("As a robustness check, an ordered logit of the {} answer does not reproduce the ranking (read the "
                         "ranking with care) (Kendall's τ = {}, {}).", *values)
        text = P.join([text, check])
    return text


def _vif_sentence(ctx: Context, drv: dict) -> P.Md:
    """The multicollinearity judgement, from the VIFs of the driver regression (thresholds 5 and 10)."""
    t = drv["model"].terms.dropna(subset=["vif"])
    worst = t.loc[t["vif"].idxmax()]
    v = float(worst["vif"])
    if v >= 10:
        return P.md("Multicollinearity is serious ({}: VIF {} ≥ 10): individual coefficients are unstable, so the ranking "
                    "relies on relative importance (LMG).", ctx.study.label(worst["term"]), P.fmt_num(v, 1))
    if v >= 5:
        return P.md("Multicollinearity is moderate ({}: VIF {} ≥ 5): coefficients of correlated dimensions share variance, "
                    "so the ranking relies on relative importance (LMG).", ctx.study.label(worst["term"]), P.fmt_num(v, 1))
    return P.md("Multicollinearity is not a concern (largest VIF {} < 5).", P.fmt_num(v, 1))


def lmg_notes(ctx: Context, drv: dict) -> list[P.Md]:
    a = drv["lmg"].attrs
    return [P.md("LMG: exact Shapley decomposition of R² over all subsets (Grömping 2006); percentile bootstrap, {} resamples, "
                 "seed {}.", P.fmt_int(a.get("n_boot", ctx.n_boot)), ctx.seed)]


def regression_notes(ctx: Context, drv: dict) -> list[P.Md]:
    if drv["model"].fit.get("cov_type") == "design":
        from study.report import design as design_report

        return design_report.regression_notes(ctx, drv)
    d = drv["model"].diagnostics.set_index("check")
    alpha = ctx.study.alpha
    bp = d.iloc[0]
    jb = d.iloc[1]
    n = int(drv["model"].fit["n"])
    parts = [P.md("Breusch–Pagan (Koenker) {}: {}", P.fmt_p(bp["p"]),
                  _("the residual variance changes with the predictors, which the HC3 standard errors account for")
                  if bp["p"] < alpha else _("no evidence that the residual variance changes with the predictors")),
             P.md("Jarque–Bera {}: {}", P.fmt_p(jb["p"]),
                  (_("the residuals are not normal, but with n = {} the tests on coefficients remain reliable").format(P.fmt_int(n))
                   if n >= 200 else _("the residuals are not normal; with a small sample, read p-values near the threshold with care"))
                  if jb["p"] < alpha else _("no evidence against normal residuals"))]
    return [P.md("OLS with HC3 heteroscedasticity-consistent standard errors; β standardised coefficient; VIF variance inflation. "
                 "Diagnostics: {}.", _semi(parts))]


def dimension_points(ctx: Context, dims: pd.DataFrame) -> pd.DataFrame:
    """The dimension table with its labels in the report's language (analyses are stored in English)."""
    return dims.assign(label=dims["dimension"].map(ctx.study.label))


def importance_points(ctx: Context, drv: dict) -> pd.DataFrame:
    """The relative importances, largest first, labelled in the report's language."""
    lmg = drv["lmg"].sort_values("share", ascending=False)
    return lmg.assign(label=lmg["predictor"].map(ctx.study.label))


def ipa_points(ctx: Context, drv: dict) -> pd.DataFrame:
    ipa = drv["ipa"]
    return ipa.assign(label=ipa["dimension"].map(ctx.study.label))


def ipa_notes(drv: dict) -> list[P.Md]:
    ipa = drv["ipa"]
    return [P.md("Quadrant lines at the means over the dimensions: importance {} of the explained variance, performance {}. "
                 "Highlighted: the dimensions to act on first (rule PRIORITY).", P.fmt_pct(ipa["importance_line"].iloc[0]),
                 P.fmt_num(ipa["performance_line"].iloc[0], 1))]


def benchmark_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Source: the quarter's competitor benchmark file. Ranks are direction-aware (lower is better for times).")]


def benchmark_sentences(ctx: Context, bench: dict) -> P.Md:
    c = bench["composite"]
    ours = c[c["is_our_bank"]].iloc[0]
    if len(c) == 1:
        return P.md("The benchmark file holds only our bank ({} on the composite index), so there is no competitor to compare "
                    "with.", P.fmt_num(ours["composite_index"], 1))
    best = c.iloc[0]
    lead = (P.md("our bank leads") if bool(best["is_our_bank"]) else
            P.md("the leader, {}, scores {}", ctx.study.bank_name(best["bank"]), P.fmt_num(best["composite_index"], 1)))
    return P.md("On the composite benchmark index (weights of study.yml, metrics normalised 0-100 across the banks) our bank "
                "scores {} and ranks {} of {}; {}.", P.fmt_num(ours["composite_index"], 1), int(ours["rank"]), len(c), lead)


def radar_points(ctx: Context, bench: dict) -> pd.DataFrame:
    t = bench["table"]
    return t.assign(metric=t["metric"].map(ctx.study.label), bank=t["bank"].map(ctx.study.bank_name))[["bank", "metric", "score"]]


def process_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Deviation = (mean handling − standard) / standard; potential ΔT = mean cycle − ideal cycle (the seed report's "
                 "method). Handling = finished − started; cycle = finished − issued; percentiles are exact (linear "
                 "interpolation).")]


def process_sentences(ctx: Context, pt: dict) -> P.Md:
    bt = pt["by_business_type"].dropna(subset=["deviation_pct"]).sort_values("deviation_pct", ascending=False)
    parts = []
    if len(bt):
        over = bt[bt["deviation_pct"] > 0]
        w = bt.iloc[0]
        n = len(bt)
        worst = (_lc(_label(ctx, w["business_type"])), P.fmt_num(w["handling_minutes_mean"], 1),
                 P.fmt_num(w["standard_minutes"], 0), P.fmt_num(w["deviation_pct"], 1, sign=True))
        closest = (_lc(_label(ctx, w["business_type"])), P.fmt_num(w["deviation_pct"], 1, sign=True))
        if len(over) == n and n > 1:
            parts.append(P.md("Every business type takes longer than its standard; {} deviates most ({} against {} min, {} %).",
                              *worst))
        elif len(over) == n:
            parts.append(P.md("The business type takes longer than its standard; {} deviates most ({} against {} min, {} %).",
                              *worst))
        elif len(over) == 0 and n > 1:
            parts.append(P.md("Every business type is handled within its standard (the closest, {}, at {} %).", *closest))
        elif len(over) == 0:
            parts.append(P.md("The business type is handled within its standard (the closest, {}, at {} %).", *closest))
        else:
            parts.append(P.md("{} of {} business types take longer than their standard; {} deviates most ({} against {} min, "
                              "{} %).", len(over), n, *worst))
    allt = pt["by_branch_id"]
    n = allt["n"].sum()
    if n:
        mean_wait = (allt["waiting_minutes_mean"] * allt["n"]).sum() / n
        within = (allt["within_service_level"] * allt["n"]).sum() / n
        sl = ctx.study.service_level
        parts.append(P.md("Customers waited {} min on average and {} were called within {} min (target {}).",
                          P.fmt_num(mean_wait, 1), P.fmt_pct(within), P.fmt_num(sl.waiting_target_minutes, 0),
                          P.fmt_pct(sl.target_share, 0)))
    return P.join(parts)


def ticket_sample(ctx: Context) -> pd.DataFrame:
    t = ctx.current.columns("process_times", ["business_type", "handling_minutes"])
    return t.assign(business=t["business_type"].map(ctx.study.label))


def standard_minutes(ctx: Context) -> dict:
    return {ctx.study.label(b.id): b.standard_minutes for b in ctx.study.business_types}


def branch_notes(ctx: Context) -> list[P.Md]:
    if analysis.sqi_table(ctx) is None:
        return []
    return [P.md("SQI per branch from the branch's own indicators (weights and ranges of study.yml); suppressed for the "
                 "branches whose survey figures are suppressed, since the survey part could be solved for from the SQI "
                 "and the process figures beside it.")]


def saturation_sentences(ctx: Context, pt: dict) -> P.Md:
    s = pt["saturation"].dropna(subset=["saturation_used"])
    if s.empty:
        return P.Md("")
    hi = s[s["saturation_used"] >= SATURATION_HIGH]
    hours = P.nmd("{} branch-hour", "{} branch-hours", len(s), P.fmt_int(len(s)))
    if len(hi):
        text = P.md("Staff saturation F (offered workload / counters actually used) reaches {} or more in {} of {}, "
                    "concentrated at {}.", f"{SATURATION_HIGH:g}", P.fmt_int(len(hi)), hours,
                    _and(f"{int(h):02d}:00" for h in hi["hour"].value_counts().index[:3]))
    else:
        text = P.md("Staff saturation F (offered workload / counters actually used) reaches {} or more in none of the {}.",
                    f"{SATURATION_HIGH:g}", hours)
    dev = pt["littles_law"]["relative_discrepancy"].abs().dropna()
    if len(dev):
        text = P.join([text, P.md("As a consistency check of the timestamps, the queue length implied by Little's law "
                                  "(L = λW) differs from the observed one by at most {} in any branch.", P.fmt_pct(dev.max(), 1))])
    return text


def sqi_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Contribution = weight × normalised value × 100; the SQI is their sum. Ranges are the historical minimum and "
                 "maximum of study.yml; values outside are clipped.")]
