"""Generated prose: findings, problems and recommendations from the results, by documented rules.

Every sentence the report writes about the data comes from a rule in :data:`RULES`; the methods
appendix prints this table, so a reviewer can see why a finding was raised or a recommendation
made. Functions take the result tables of :mod:`study.report.analysis` and return Markdown (and, for the
problems and recommendations, a DataFrame of the evidence).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import i18n
from study import metrics as mx
from study.i18n import N_, NP_, _, pgettext
from study.report import analysis, tables
from study.report import present as P
from study.report.analysis import Context, better_direction, effects

#: Business types more than this far over their standard handling time are a problem (per cent).
DEVIATION_PROBLEM_PCT = 20.0
#: A branch-hour whose saturation against the counters actually used reaches this is overloaded.
SATURATION_HIGH = 0.85

_RULE_TEXTS = [
    ("CHANGE", N_("Headline change"), N_("A change against the baseline is called an improvement or a deterioration only when "
     "its test is significant at the study's α (two-sided); otherwise 'no significant change', whatever the point estimate.")),
    ("PRIORITY", N_("Dimensions to act on first"), N_("Dimensions in the 'concentrate here' quadrant of the importance–performance "
     "analysis (LMG share at or above the mean share, score below the mean score), most important first; remaining places "
     "go to the important dimensions with the lowest scores, then to the lowest scores overall; the text says which clause "
     "chose each. Three are named (all of them when the questionnaire has fewer).")),
    ("PROBLEM-DIM", N_("Problem: dimension"), N_("Each priority dimension is a problem, with its score, its rank by score and its "
     "share of the explained variance of overall satisfaction.")),
    ("PROBLEM-PROCESS", N_("Problem: business type over standard"),
     N_("Business types whose mean handling time exceeds the standard of study.yml by more than {} %, "
        "largest deviation first (at most three).")),
    ("PROBLEM-BRANCH", N_("Problem: branch service level"),
     N_("Branches whose share of customers called within the waiting target is below the target share, lowest first (at most "
        "three), with their busiest hour's saturation F against the counters actually used (F ≥ {} is high).")),
    ("PROBLEM-SCALE", N_("Problem: measurement"), N_("Questionnaire scales below a reliability or validity threshold "
     "(Appendix A thresholds) are named, so their scores are read with care.")),
    ("PROBLEM-BENCH", N_("Problem: competitor gap"), N_("Competitor metrics where our bank ranks in the lower half.")),
    ("EFFECT", N_("Effect of a measure"), N_("Each measure is evaluated in the window its start date allows: started in the "
     "reported quarter, before against after its start; started in or before the baseline quarter, baseline against "
     "current quarter, a sustained-effect comparison (whether the effect grew or held, not the effect of introducing "
     "it); starting after the quarter, planned and not tested; without observations on both sides, not testable (the "
     "reason is given). With control branches, a measure improved a metric when the difference-in-differences (pilot vs "
     "control) is significant after Holm adjustment across the measure's metrics and points the right way; the p "
     "adjusted is the DiD's headline p: the restricted wild-cluster bootstrap p with fewer than 30 branches, else the "
     "cluster-SE t test (the table names both). Without control branches the pilot branches' before/after change is "
     "judged the same way and reported as weaker evidence: it cannot separate the measure from a change every branch "
     "saw. 'No evidence of change' otherwise. The control branches' own before/after change is reported beside it.")),
    ("REC-MEASURE", N_("Recommendation: measure"), N_("On each measure's first (primary) metric. DiD improved without a "
     "significant change in the control branches: roll out to the other branches; improved but the control branches "
     "changed too, or no evidence: review before extending; worsened: stop and review its design. Pilot branches only "
     "(no control): improved: confirm with control branches before a roll-out; no evidence: review before extending; "
     "worsened: review its design before continuing. Sustained-effect comparison: improved: continue; no evidence: "
     "continue and review, the quarters cannot show its introduction effect; worsened: review. Planned: evaluate once a "
     "quarter after its start is reported. Not testable: the reason and the data an evaluation needs.")),
    ("REC-STAFF", N_("Recommendation: staffing"), N_("Per branch, the hours where Erlang C needs more counters than are open "
     "and the hours with spare counters (needed < used − 0.5). The branches with the most counters missing (at most three) "
     "are named, with their spare hours to move counters from; when no branch is short, the branches with spare counters "
     "are named instead; when neither, nothing is said.")),
    ("REC-FOCUS", N_("Recommendation: focus"), N_("The priority dimensions become the focus of the next quarter's improvement plan.")),
    ("REC-TARGET", N_("Recommendation: targets"), N_("Targets not met, or not distinguishable from their threshold, stay on the "
     "plan with the gap stated.")),
]
_RULE_VALUES = {"PROBLEM-PROCESS": (f"{DEVIATION_PROBLEM_PCT:g}",), "PROBLEM-BRANCH": (f"{SATURATION_HIGH:g}",)}


def rules_table() -> pd.DataFrame:
    """The rules that generate the text (``rule``, ``name``, ``text``), in the active language (Appendix A)."""
    return pd.DataFrame([(r, i18n.tr(n), i18n.tr(t).format(*_RULE_VALUES.get(r, ()))) for r, n, t in _RULE_TEXTS],
                        columns=["rule", "name", "text"])


#: The rules in English (the documentation and the tests read them; the report shows :func:`rules_table`).
RULES = rules_table()


def _label(ctx: Context, key: str) -> str:
    return ctx.study.label(key)


def _fmt_metric(metric: str, value: float, study=None) -> str:
    """A metric's value in prose: the table's formatting, with the unit for minutes."""
    return tables.value(metric, value, study=study, unit=True)


def _fmt_change(metric: str, value: float, study=None) -> str:
    return tables.change(metric, value, study=study, unit=True)


def _metric(ctx: Context, metric: str) -> str:
    """A metric's label in the active language (results carry English labels: one analysis serves every language)."""
    return tables.metric_label(metric, ctx.study)


def _q(q) -> str:
    """A quarter in prose ("2025Q2"; "2025年第二季度" in Chinese)."""
    return i18n.quarter(q)


def _level(ctx: Context) -> str:
    """The confidence level as written ("95 %"; "95%" in Chinese)."""
    return i18n.percent(f"{ctx.level * 100:g}")


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten", 11: "eleven", 12: "twelve"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 queue ticket", "3 banks", "1,204 questionnaires": the noun agrees with the number (English only;
    prose that is translated writes ``P.nmd("{} bank", "{} banks", n, P.fmt_int(n))``)."""
    return f"{P.fmt_int(n)} {noun if int(n) == 1 else (plural or noun + 's')}"


def number_words(k: int) -> str:
    """"three" dimensions in English prose; digits in Chinese."""
    return NUMBER_WORDS.get(k, P.fmt_int(k)) if i18n.language() == "en" else P.fmt_int(k)


def skipped_sentence(what: str, reason: str) -> P.Md:
    """The one sentence a report writes for an analysis the data could not support."""
    return P.md("{} was not carried out: {}.", what, reason)


def headline_sentences(ctx: Context, headline: pd.DataFrame) -> P.Md:
    """Rule CHANGE: one sentence per headline figure."""
    if ctx.baseline is None:
        return P.md("There is no baseline quarter, so this report describes the quarter without comparisons.")
    parts = []
    study = ctx.study
    for r in headline.to_dict("records"):
        if r["metric"] == "sqi":
            if pd.isna(r.get("change")):
                parts.append(P.md("The Service Quality Index is {} of 100 (no baseline value; a composite index, not tested).",
                                  P.fmt_num(r["current"], 1)))
            else:
                parts.append(P.md("The Service Quality Index is {} of 100 ({} points against {}; a composite index, not tested).",
                                  P.fmt_num(r["current"], 1), P.fmt_num(r["change"], 1, sign=True), _q(ctx.baseline_quarter)))
            continue
        v = r.get("verdict", "not tested")
        m = r["metric"]
        label = _metric(ctx, m)
        if v == "not tested":
            if pd.isna(r.get("baseline")):
                parts.append(P.md("{}: {} (not measured in {}).", label, _fmt_metric(m, r["current"], study),
                                  _q(ctx.baseline_quarter)))
            else:
                parts.append(P.md("{}: {} → {} (too few observations to test the change).", label,
                                  _fmt_metric(m, r["baseline"], study), _fmt_metric(m, r["current"], study)))
            continue
        values = (label, _fmt_metric(m, r["baseline"], study), _fmt_metric(m, r["current"], study),
                  _fmt_change(m, r["change"], study), _level(ctx), tables.ci(m, r["ci_low"], r["ci_high"], study=study),
                  P.fmt_p(r["p"]))
        if v == "improved":
            parts.append(P.md("{} improved: {} → {} (change {}, {} CI {}, {}).", *values))
        elif v == "worsened":
            parts.append(P.md("{} worsened: {} → {} (change {}, {} CI {}, {}).", *values))
        else:
            parts.append(P.md("{} did not change significantly: {} → {} (change {}, {} CI {}, {}).", *values))
    return P.Md("\n".join(f"- {p}" for p in parts))


def target_sentences(targets: pd.DataFrame) -> P.Md:
    n = len(targets)
    if n == 0:
        return P.md("The study definition sets no targets.")
    status = targets["status"]
    met, notmet = int((status == "met").sum()), int((status == "not met").sum())
    unmeasured = int(status.isin(["not measured", "no baseline"]).sum())
    undecided = n - met - notmet - unmeasured
    parts = [P.nmd("{} is met", "{} are met", met, met), P.md("{} not met", notmet)]
    if undecided:
        parts.append(P.md("{} cannot be distinguished from the threshold with the data at hand (the confidence "
                          "interval contains it)", undecided))
    if unmeasured:
        parts.append(P.md("{} cannot be measured with the data of this report", unmeasured))
    return P.md("Of {}, {}.", P.nmd("{} target", "{} targets", n, P.fmt_int(n)), _and(parts))


def priority_sentence(ctx: Context, priorities: pd.DataFrame) -> P.Md:
    """Rule PRIORITY in words, saying which clause of the rule chose each dimension."""
    if priorities.empty:
        d = analysis.drivers(ctx)
        return skipped_sentence("The ranking of dimensions to act on", d["skipped"] if analysis.is_skipped(d) else
                                "there is no driver analysis")
    names = [P.md("**{}** (score {}, {} of the explained variance)", _label(ctx, r["dimension"]), P.fmt_num(r["performance"], 1),
                  P.fmt_pct(r["importance"])) for r in priorities.to_dict("records")]
    text = P.md("Act first on {}.", _and(names))
    k = len(priorities)
    clauses = priorities["clause"].value_counts()
    n_focus, n_imp, n_low = (int(clauses.get(c, 0)) for c in ("concentrate", "important_low", "low_score"))
    if k == 1 and len(ctx.study.dimension_ids) == 1:
        return P.md("{} The questionnaire has one dimension, so it is the only place to act (rule PRIORITY).", text)
    why = []
    if n_focus and k == 1:
        why.append(P.md("it falls in the 'concentrate here' quadrant: important for overall satisfaction and below the "
                        "average score"))
    elif n_focus == k:
        why.append(P.md("all fall in the 'concentrate here' quadrant: important for overall satisfaction and below the "
                        "average score"))
    elif n_focus:
        why.append(P.nmd("{} falls in the 'concentrate here' quadrant: important for overall satisfaction and below the "
                         "average score", "{} fall in the 'concentrate here' quadrant: important for overall satisfaction "
                         "and below the average score", n_focus, n_focus))
    else:
        why.append(P.md("no dimension falls in the 'concentrate here' quadrant"))
    if n_imp:
        why.append(P.nmd("{} is an important dimension (at or above the mean importance) with the lowest scores among the "
                         "rest", "{} are important dimensions (at or above the mean importance) with the lowest scores "
                         "among the rest", n_imp, n_imp))
    if n_low:
        why.append(P.nmd("{} is below the mean importance and chosen for the lowest score",
                         "{} are below the mean importance and chosen for the lowest scores", n_low, n_low))
    return P.md("{} Rule PRIORITY: {}.", text, _semi(why))


def _lc(label: str) -> str:
    """A label mid-sentence: "Deposit and withdrawal" → "deposit and withdrawal"; acronyms ("NPS"), names
    and text without case (Chinese) unchanged."""
    label = str(label)
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def _and(items) -> P.Md:
    """"a", "a and b", "a, b and c" (items are escaped unless they are Md); "甲、乙和丙" in Chinese (CLDR)."""
    items = [P.lit(x) for x in items]
    if len(items) <= 1:
        return P.join(items)
    return P.Md(i18n.join_list(items))


def _semi(items, plain: bool = False):
    """Clauses joined by semicolons ("; " in English, "；" in Chinese); ``plain`` for text that is not Markdown."""
    sep = "；" if i18n.language() == "zh" else "; "
    return sep.join(str(x) for x in items) if plain else P.join(items, sep=sep)


def _comma(items, plain: bool = False):
    """A list joined by commas (", " in English, "、" in Chinese); ``plain`` for text that is not Markdown."""
    sep = "、" if i18n.language() == "zh" else ", "
    return sep.join(str(x) for x in items) if plain else P.join(items, sep=sep)


def problems(ctx: Context, priorities: pd.DataFrame, measurement: dict, process: dict | None, benchmark: dict | None,
             dims: pd.DataFrame) -> pd.DataFrame:
    """The problems found, each with its rule and the evidence (one row per problem). Analyses the
    data did not support (None or skipped) contribute nothing. Written in the active language."""
    rows = []
    score_rank = dims.set_index("dimension")["score"].rank(ascending=False, method="min")
    for r in priorities.to_dict("records"):
        d = r["dimension"]
        rows.append({"area": pgettext("area", "Satisfaction"), "rule": "PROBLEM-DIM", "problem": _label(ctx, d),
                     "evidence": _("score {} / 100 (rank {} of {} by score); {} of the explained variance of overall "
                                   "satisfaction").format(P.fmt_num(r['performance'], 1), int(score_rank[d]), len(score_rank),
                                                          P.fmt_pct(r['importance']))})
    if process is not None:
        bt = process["by_business_type"].sort_values("deviation_pct", ascending=False)
        for r in bt[bt["deviation_pct"] > DEVIATION_PROBLEM_PCT].head(3).to_dict("records"):
            ev = _("mean handling {} min against a standard of {} min ({}); first-pass yield {}").format(
                P.fmt_num(r['handling_minutes_mean'], 1), P.fmt_num(r['standard_minutes'], 0),
                i18n.percent(P.fmt_num(r['deviation_pct'], 1, sign=True)), P.fmt_pct(r['first_pass_yield']))
            if pd.notna(r.get("improvement_potential")):
                ev += _("; improvement potential {} min of cycle time").format(P.fmt_num(r['improvement_potential'], 1))
            rows.append({"area": pgettext("area", "Process"), "rule": "PROBLEM-PROCESS",
                         "problem": _label(ctx, r["business_type"]), "evidence": ev})
        sl = ctx.study.service_level
        br = process["by_branch_id"].sort_values("within_service_level")
        sat = process["saturation"]
        for r in br[br["within_service_level"] < sl.target_share].head(3).to_dict("records"):
            ev = _("{} called within {} min (target {}); mean wait {} min").format(
                P.fmt_pct(r['within_service_level']), P.fmt_num(sl.waiting_target_minutes, 0), P.fmt_pct(sl.target_share, 0),
                P.fmt_num(r['waiting_minutes_mean'], 1))
            b = sat[sat["branch_id"] == r["branch_id"]].sort_values("saturation_used", ascending=False)
            if len(b) and pd.notna(b.iloc[0]["saturation_used"]):
                ev += _("; busiest hour {} with saturation F = {}").format(f"{int(b.iloc[0]['hour']):02d}:00",
                                                                          P.fmt_num(b.iloc[0]['saturation_used'], 2))
            rows.append({"area": pgettext("area", "Queues"), "rule": "PROBLEM-BRANCH", "problem": _label(ctx, r["branch_id"]),
                         "evidence": ev})
    if not analysis.is_skipped(measurement):
        from study.thresholds import judge_head

        j = measurement["judgements"]
        cfa = measurement["cfa"]
        judged = ["alpha", "omega_total"] + (["cr", "ave", "htmt", "cfi", "rmsea"] if cfa is not None and cfa.admissible else [])
        bad = j[(j["ok"] == False) & j["statistic"].isin(judged)]  # noqa: E712
        if cfa is not None and not cfa.admissible:
            rows.append({"area": pgettext("area", "Measurement"), "rule": "PROBLEM-SCALE", "problem": _("the measurement model"),
                         "evidence": improper_text(ctx, cfa.improper, plain=True) if cfa.improper else _("no convergence")})
        for what, g in bad.groupby("what", sort=False):
            pair = what.split("~") if "~" in what else None   # an HTMT judgement is about two scales ("a~b")
            rows.append({"area": pgettext("area", "Measurement"), "rule": "PROBLEM-SCALE", "what": what,
                         "problem": _("the measurement model") if what == "model" else
                         _("discriminant validity of “{}” and “{}”").format(*(_label(ctx, x) for x in pair)) if pair else
                         _label(ctx, what),
                         "evidence": _semi([judge_head(s_, v_) for s_, v_ in zip(g["statistic"], g["value"])], plain=True)})
    if benchmark is not None:
        t = benchmark["table"]
        ours = t[t["bank"] == ctx.study.benchmark.our_bank]
        for r in ours[ours["rank"] > ours["n_banks"] / 2].to_dict("records"):
            rows.append({"area": pgettext("area", "Competitors"), "rule": "PROBLEM-BENCH", "problem": _label(ctx, r["metric"]),
                         "evidence": _("rank {} of {}: {} {} against the best {} and the competitors' average {}").format(
                             r['rank'], r['n_banks'], P.fmt_num(r['value'], 1), tables.unit_text(r['unit']),
                             P.fmt_num(r['best_value'], 1),
                             P.fmt_num(r['competitor_average'], 1))})
    # "what": the key a row is about (a dimension, "model", or two scales "a~b"), for the recommendation rules
    return pd.DataFrame(rows, columns=["area", "problem", "evidence", "rule", "what"])


def problems_caption(area: str, quarter: str) -> str:
    """Caption of a table of problems of one area ("Problems found: queues, 2025Q2")."""
    return _("Problems found: {}, {}").format(area.lower() if i18n.language() == "en" else area, i18n.quarter(quarter))


def _hour_ranges(hours, values=None) -> str:
    """Consecutive hours as ranges: [9, 10, 11, 14] -> "09:00–12:00, 14:00–15:00" (with +n counters)."""
    hours = [int(h) for h in hours]
    values = [int(v) for v in values] if values is not None else [None] * len(hours)
    out, i = [], 0
    while i < len(hours):
        j = i
        while j + 1 < len(hours) and hours[j + 1] == hours[j] + 1:
            j += 1
        text = f"{hours[i]:02d}:00–{hours[j] + 1:02d}:00"
        if values[i] is not None:
            lo, hi = min(values[i:j + 1]), max(values[i:j + 1])
            text += _(" (+{})").format(lo) if lo == hi else _(" (+{} to +{})").format(lo, hi)
        out.append(text)
        i = j + 1
    return _comma(out, plain=True)


def staffing_moves(ctx: Context, staffing: pd.DataFrame) -> pd.DataFrame:
    """Rule REC-STAFF: per branch, the hours short of counters (and how many) and the hours with spare ones."""
    rows = []
    for b, g in staffing.groupby("branch_id", sort=True):
        g = g.sort_values("hour")
        short = g[g["difference"] > 0]
        spare = g[g["counters_needed"] < g["counters_used"] - 0.5]
        if short.empty and spare.empty:
            continue
        rows.append({"branch_id": b, "branch": _label(ctx, b),
                     "counters_used": P.fmt_num(g["counters_used"].mean(), 1),
                     "hours_short": _hour_ranges(short["hour"], short["difference"]) or P.DASH,
                     "hours_spare": _hour_ranges(spare["hour"]) or P.DASH,
                     "counters_short": int(short["difference"].sum())})
    return pd.DataFrame(rows, columns=["branch_id", "branch", "counters_used", "hours_short", "hours_spare", "counters_short"])


def recommendations(ctx: Context, verdicts: pd.DataFrame, priorities: pd.DataFrame, staffing: pd.DataFrame,
                    targets: pd.DataFrame, problems_found: pd.DataFrame) -> pd.DataFrame:
    """Recommendations, each with the rule that produced it and its evidence."""
    rows = measure_recommendations(ctx, verdicts)
    if staffing is not None:
        moves = staffing_moves(ctx, staffing)
        short = moves[moves["counters_short"] > 0].sort_values(["counters_short", "branch_id"], ascending=[False, True])
        spare = moves[moves["hours_spare"] != P.DASH]
        if not short.empty:
            worst = short.head(3)
            who = (_("the branches with the most counters missing") if len(short) > 1 else
                   _("the branch with counters missing"))
            rec = (P.md("Add counters at peak hours in {}, moving them from off-peak hours ({}).", _and(worst["branch"]), who)
                   if (worst["hours_spare"] != P.DASH).any() else
                   P.md("Add counters at peak hours in {} ({}).", _and(worst["branch"]), who))
            rows.append({"recommendation": rec,
                         "evidence": _semi([_("{}: short {}; spare {}").format(r['branch'], r['hours_short'], r['hours_spare'])
                                            for r in worst.to_dict("records")], plain=True),
                         "rule": "REC-STAFF"})
        elif not spare.empty:
            few = spare.head(3)
            rows.append({"recommendation": P.md("No branch is short of counters; {} could serve the same customers with fewer "
                                                "counters open in some hours.", _and(few["branch"])),
                         "evidence": _semi([_("{}: spare {}").format(r['branch'], r['hours_spare'])
                                            for r in few.to_dict("records")], plain=True),
                         "rule": "REC-STAFF"})
    if not priorities.empty:
        labels = [_label(ctx, d) for d in priorities["dimension"]]
        rows.append({"recommendation": P.md("Focus next quarter's plan on {}.", _and(map(_lc, labels))),
                     "evidence": _semi([_("{}: score {}, importance {}").format(lb, P.fmt_num(r['performance'], 1),
                                                                                 P.fmt_pct(r['importance']))
                                        for lb, r in zip(labels, priorities.to_dict("records"))], plain=True),
                     "rule": "REC-FOCUS"})
    open_targets = targets[targets["status"].isin(["not met", "not distinguishable"])] if not targets.empty else targets
    for r in open_targets.to_dict("records"):
        base = ((lambda x, e: P.fmt_pct(x, 1 + e, sign=True)) if r["kind"] == "relative_change" else
                (lambda x, e: tables.change(r["metric"], x, study=ctx.study, unit=True, extra=e)) if r["kind"] == "change" else  # noqa: B023
                (lambda x, e: tables.value(r["metric"], x, study=ctx.study, unit=True, extra=e)))  # noqa: B023 - each lambda is used in its own iteration
        extra = tables.digits_apart(base, [r["observed"], r["ci_low"], r["ci_high"]], [r["target_value"]])
        shown = lambda x, b=base, e=extra: b(x, e)  # noqa: E731
        rows.append({"recommendation": P.md("Keep the target “{}” on the plan ({}).", tables.target_label(ctx.study, r),
                                            i18n.tr(r["status"], "cell")),
                     "evidence": _("observed {} [{}, {}] against {} {}").format(
                         shown(r['observed']), shown(r['ci_low']), shown(r['ci_high']),
                         tables.OPERATORS.get(r['operator'], r['operator']), shown(r['target_value'])),
                     "rule": "REC-TARGET"})
    scales = problems_found[problems_found["rule"] == "PROBLEM-SCALE"]
    for r in scales.to_dict("records"):
        what = r.get("what")
        pair = what.split("~") if isinstance(what, str) and "~" in what else None
        rows.append({"recommendation": P.md("Revise the items of the measurement model before the next wave.")
                     if r["problem"] == _("the measurement model") else
                     P.md("Revise the items of the scales “{}” and “{}” so that they measure distinct aspects, before the "
                          "next wave.", *(_label(ctx, x) for x in pair)) if pair else
                     P.md("Revise the items of the scale “{}” before the next wave.", r["problem"]),
                     "evidence": r["evidence"], "rule": "PROBLEM-SCALE"})
    out = pd.DataFrame(rows, columns=["recommendation", "evidence", "rule"], dtype=object)   # object: pandas 3 str dtype drops Md
    out.insert(0, "no", np.arange(1, len(out) + 1))
    return out


def _unit(metric: str, study=None) -> str:
    """The unit a metric's estimates are in (DiD figure, ITS sentences), from the metric registry."""
    m = mx.lookup(metric, study)
    if m.style == "min":
        return _("minutes")
    if m.kind == "share":
        return _("share (0-1)")
    if m.kind == "nps":
        return _("NPS points")
    if m.kind == "mean":
        return _("points ({} scale)").format(m.unit) if m.unit else _("points (answer scale)")
    return _("points (0-100 score)")


def _low(text: str) -> str:
    """A label lower-cased mid-sentence in English; unchanged in Chinese."""
    return str(text).lower() if i18n.language() == "en" else str(text)


def _name(m) -> str:
    """A measure's name in the active language (``name_zh`` in Chinese)."""
    return i18n.pick(m, "name")


def _reason(text) -> str:
    """A reason the analysis stored in English (marked with NP_("reason", ...)), in the active language."""
    return i18n.tr(text, "reason")


def _design_words(design: str) -> tuple[str, str]:
    """(abbreviation of the estimate, p name) for a verdict's design."""
    return ("DiD", "Holm") if design == "difference-in-differences" else ("change", "Holm")


def effect_sentence(ctx: Context, verdicts: pd.DataFrame, its: pd.DataFrame | None) -> P.Md:
    """Rule EFFECT, in words, per measure: its window (introduced, sustained, planned, not testable), the
    design (DiD, or pilot before/after as weaker evidence), the verdicts, the pre-trend flag and the ITS
    of each of its queue-log metrics (or why there is none)."""
    from study.report.analysis import measure_plan

    if not ctx.study.measures:
        return P.Md("")
    plan = measure_plan(ctx).set_index("measure")
    ev = effects(ctx)
    out = []
    for m in ctx.study.measures:
        p = plan.loc[m.id]
        v = verdicts[verdicts["measure"] == m.id] if verdicts is not None and not verdicts.empty else pd.DataFrame()
        if p["status"] == "planned":
            out.append(P.md("**{}** starts on {}, after {}: it is listed in Chapter 4 and not tested in this report.",
                            _name(m), i18n.date(m.start), _q(ctx.quarter)))
            continue
        if p["status"] == "not testable":
            out.append(P.md("**{}** cannot be evaluated with these quarters: it {}.", _name(m), _reason(p["reason"])))
            continue
        parts = [P.md("**{}** (pilot {}, control {}, from {}): ", _name(m), _comma(m.pilot, plain=True),
                      _comma(m.control, plain=True), i18n.date(m.start)) if m.control else
                 P.md("**{}** (pilot {}, from {}): ", _name(m), _comma(m.pilot, plain=True), i18n.date(m.start))]
        if p["status"] == "sustained":
            parts.append(P.md("it {}, so {} → {} is a sustained-effect comparison, which shows whether the effect grew or "
                              "held, not the effect of introducing the measure; ", _reason(p["reason"]), _q(p["before"]),
                              _q(p["after"])))
        if p["design"] == "pilot before/after":
            parts.append(P.md("without control branches the evidence is the before/after change in the pilot branches "
                              "alone, weaker than a difference-in-differences because it cannot separate the measure "
                              "from a change every branch saw; "))
        abbr = _design_words(p["design"])[0]
        clauses = []
        for verdict in ("improved", "worsened"):
            sel = v[v["verdict"] == verdict] if len(v) else v
            if len(sel):
                items = [P.md("{} ({} {}, {} CI {}, Holm {})", _low(_metric(ctx, r["metric"])), abbr,
                              tables.change(r["metric"], r["estimate"]), _level(ctx),
                              tables.ci(r["metric"], r["ci_low"], r["ci_high"]), P.fmt_p(r["p_holm"]))
                         for r in sel.to_dict("records")]
                clauses.append(P.md("improved {}", _comma(items)) if verdict == "improved" else
                               P.md("worsened {}", _comma(items)))
        none = v[v["verdict"] == "no evidence of change"] if len(v) else v
        if len(none):
            clauses.append(P.md("no evidence of change in {}", _comma([_low(_metric(ctx, x)) for x in none["metric"]],
                                                                     plain=True)))
        untested = v[v["verdict"] == "not tested"] if len(v) else v
        if len(untested):
            clauses.append(P.md("not tested: {}", _semi([_("{} ({})").format(_low(_metric(ctx, r["metric"])), _reason(r["reason"]))
                                                         for r in untested.to_dict("records")], plain=True)))
        parts.append(_semi(clauses) if clauses else P.md("nothing could be tested"))
        parts.append(P.pmd("punctuation", "."))
        if not ev.empty and "pretrend_p" in ev:
            d = ev[(ev["measure"] == m.id) & (ev["analysis"] == "difference-in-differences")]
            flagged = d[d["pretrend_p"] < ctx.study.alpha]
            if len(flagged):
                parts.append(P.md(" The pre-trend test within the before period flags {}: pilot and control already drifted "
                                  "apart before the start, so read these DiD estimates with care.",
                                  _comma([_("{} ({})").format(_low(_metric(ctx, r["metric"])), P.fmt_p(r["pretrend_p"]))
                                          for r in flagged.to_dict("records")], plain=True)))
        parts.append(its_sentence(ctx, m, its))
        out.append(P.join(parts, sep=""))
    return P.Md("\n\n".join(out))


def its_sentence(ctx: Context, m, its: pd.DataFrame | None) -> P.Md:
    """The interrupted time series of a measure's own queue-log metrics in words, or why there is none."""
    if its is None or its.empty:
        return P.Md("")
    rows = its[its["measure"] == m.id]
    fitted = rows[rows["status"].eq("fitted")]
    texts = []
    for metric in fitted["metric"].unique():
        f = fitted[fitted["metric"] == metric].set_index("group")
        if "pilot" not in f.index:
            continue
        pr = f.loc["pilot"]
        t = P.md(" The interrupted time series of weekly {} shows a level change of {} ({}, {}) in the pilot branches",
                 _low(ctx.study.label(metric)), tables.its_change(metric, pr["level_change"]),
                 i18n.percent(P.fmt_num(pr["relative_level_change"] * 100, 1, sign=True)), P.fmt_p(pr["level_p"]))
        if "control" in f.index:
            c = f.loc["control"]
            t = P.join([t, P.md(" and {} ({}) in the control branches", tables.its_change(metric, c["level_change"]),
                                P.fmt_p(c["level_p"]))], sep="")
        texts.append(P.join([t, P.pmd("punctuation", ".")], sep=""))
    if fitted.empty and len(rows):
        texts.append(P.md(" No interrupted time series: {}.", its_reason(rows)))
    return P.join(texts, sep="")


def its_reason(rows: pd.DataFrame) -> str:
    """Why a measure has no fitted ITS, from its "not fitted" rows (the first distinct reasons)."""
    notes = [_reason(n) for n in dict.fromkeys(rows.loc[rows["status"].ne("fitted"), "note"].astype(str)) if n]
    return _semi(notes[:2], plain=True) or _("no weeks to fit")


def its_skipped(ctx: Context, its: pd.DataFrame | None) -> P.Md:
    """One sentence per measure that has no interrupted time series, saying why (Chapter 5)."""
    if not ctx.study.measures:
        return P.Md("")
    if its is None or its.empty:
        return P.md("No interrupted time series: no queue data (process times) were supplied.")
    out = []
    for m in ctx.study.measures:
        rows = its[its["measure"] == m.id]
        if len(rows) and not rows["status"].eq("fitted").any():
            out.append(P.md("**{}** has no interrupted time series: {}.", _name(m), its_reason(rows)))
    return P.join(out)


def its_caption(ctx: Context, m, metric: str) -> P.Md:
    """Caption of a measure's ITS figure for one of its metrics."""
    if m.control:
        return P.md("Weekly {}, pilot and control branches of “{}”, {}", _low(ctx.study.label(metric)), _name(m),
                    effects_period(ctx))
    return P.md("Weekly {}, pilot branches of “{}”, {}", _low(ctx.study.label(metric)), _name(m), effects_period(ctx))


def measure_recommendations(ctx: Context, verdicts: pd.DataFrame) -> list[dict]:
    """Rule REC-MEASURE: one recommendation per measure, by its status and design (see :data:`RULES`)."""
    rows = []
    for m in ctx.study.measures:
        v = verdicts[verdicts["measure"] == m.id] if verdicts is not None and not verdicts.empty else pd.DataFrame()
        status = v["status"].iloc[0] if len(v) and "status" in v else ("introduced" if len(v) else "not testable")
        design = v["design"].iloc[0] if len(v) and "design" in v else ("difference-in-differences" if m.control else "pilot before/after")
        if status == "planned":
            rows.append({"recommendation": P.md("Evaluate **{}** after it starts on {}, once a quarter after its start is "
                                                "reported.", _name(m), i18n.date(m.start)),
                         "evidence": _reason(v["reason"].iloc[0]) if len(v) else _("starts after {}").format(_q(ctx.quarter)),
                         "rule": "REC-MEASURE"})
            continue
        primary = v[v["metric"] == m.metrics[0]] if len(v) else v
        if status == "not testable" or primary.empty or primary.iloc[0]["verdict"] == "not tested":
            reason = _reason(primary.iloc[0]["reason"]) if len(primary) else _("no baseline/follow-up pair")
            rows.append({"recommendation": P.md("Plan an evaluation of **{}**: it cannot be evaluated with these quarters "
                                                "({}); compare a period before its start with one after it.", _name(m), reason),
                         "evidence": reason, "rule": "REC-MEASURE"})
            continue
        primary = primary.iloc[0]
        abbr = _design_words(design)[0]
        improved = [_metric(ctx, x) for x in v[v["verdict"] == "improved"]["metric"]]
        ev = _("{}: {} {} {} CI {}, Holm-adjusted {}").format(
            _metric(ctx, primary["metric"]), abbr, tables.change(primary['metric'], primary['estimate']), _level(ctx),
            tables.ci(primary['metric'], primary['ci_low'], primary['ci_high']), P.fmt_p(primary['p_holm']))
        if design == "pilot before/after":
            ev += _(" (pilot branches only, no control)")
        if status == "sustained":
            ev += _(" (sustained-effect comparison)")
        ev += _("; improved: {}").format(_comma(improved, plain=True) if improved else _("none"))
        verdict, label = primary["verdict"], _low(_metric(ctx, primary["metric"]))
        name = _name(m)
        if status == "sustained":
            text = {"improved": P.md("Continue **{}**: {} kept improving between the quarters (sustained-effect "
                                     "comparison).", name, label),
                    "worsened": P.md("Review **{}**: {} worsened between the quarters although the measure was running.",
                                     name, label)}.get(verdict, P.md(
                        "Continue **{}** and review it: {} did not change significantly between the quarters; these "
                        "quarters cannot show the effect of introducing it.", name, label))
        elif design == "pilot before/after":
            text = {"improved": P.md("Confirm **{}** with control branches before rolling it out: {} improved in the "
                                     "pilot branches, but a before/after change without control branches cannot be "
                                     "separated from a change every branch saw.", name, label),
                    "worsened": P.md("Review the design of **{}** before continuing it: {} worsened in the pilot branches "
                                     "(before/after, no control branches).", name, label)}.get(verdict, P.md(
                        "Review **{}** before extending it: there is no evidence yet that it moved {} (pilot branches "
                        "only, no control branches).", name, label))
        elif verdict == "improved" and not primary["control_changed"]:
            others = [b for b in ctx.study.branch_ids if b not in m.pilot]
            text = P.md("Roll out **{}** to the other {} branches.", name, len(others))
        elif verdict == "worsened":
            text = P.md("Stop **{}** and review its design.", name)
        elif verdict == "improved":
            text = P.md("Review **{}** before extending it: {} improved against the control branches, but the control "
                        "branches changed significantly too.", name, label)
        else:
            text = P.md("Review **{}** before extending it: there is no evidence yet that it moved {}.", name, label)
        rows.append({"recommendation": text, "evidence": ev, "rule": "REC-MEASURE"})
    return rows


__all__ = ["RULES", "headline_sentences", "target_sentences", "priority_sentence", "problems", "staffing_moves",
           "recommendations", "effect_sentence", "better_direction"]


# ---------------------------------------------------------------------------------------------
# Chapter texts, notes and display helpers (each reads the results; none types a number)

SQI_FORMULA = r"\mathrm{SQI} = \sum_i W_i \, \frac{X_i - X_{\min}}{X_{\max} - X_{\min}}"
# (formula, its explanation: marked here, translated where shown by formulas())
FORMULAS = [
    (SQI_FORMULA, N_("reversed, (X_max − X_i)/(X_max − X_min), for indicators where lower is better; X clipped to the historical range")),
    (r"\alpha = \frac{k}{k-1}\left(1 - \frac{\sum_j s_j^2}{s_X^2}\right)", N_("Cronbach's α of a scale of k items with sum score X")),
    (r"\omega = \frac{(\sum \lambda_j)^2}{(\sum \lambda_j)^2 + \sum \theta_j}", N_("McDonald's ω from a one-factor ML model of the scale")),
    (r"\mathrm{NPS} = 100\,(p - d), \quad \mathrm{SE} = 100\sqrt{\frac{p + d - (p - d)^2}{n}}", N_("p promoters (9-10), d detractors (0-6)")),
    (r"\mathrm{LMG}_j = \frac{1}{p!}\sum_{\pi} \left[R^2(S_j^{\pi} \cup \{j\}) - R^2(S_j^{\pi})\right]",
     N_("the average gain in R² from adding predictor j over all p! orders (Shapley value of R²)")),
    (r"y_{bt} = \alpha_b + \gamma_t + \delta \, D_{bt} + \varepsilon_{bt}",
     N_("difference-in-differences with period effects, δ the effect; SE clustered by branch")),
]
_EFFECT_TABLES = [("pilot before/after", N_("Before/after in the pilot branches")),
                  ("control before/after", N_("Before/after in the control branches")),
                  ("difference-in-differences", N_("Difference-in-differences, pilot against control branches"))]
_STAFFING_HEADERS = {"branch": NP_("column", "Branch"), "counters_used": NP_("column", "Counters in use (mean)"),
                     "hours_short": NP_("column", "Hours short of counters (counters to add)"),
                     "hours_spare": NP_("column", "Hours with a spare counter")}
_RECOMMENDATION_HEADERS = {"no": NP_("column", "No."), "recommendation": NP_("column", "Recommendation"),
                           "evidence": NP_("column", "Evidence"), "rule": NP_("column", "Rule")}


def __getattr__(name: str):
    """The tables' captions and headers in the active language (``narrative.EFFECT_TABLES`` etc.)."""
    if name == "EFFECT_TABLES":
        return [(k, i18n.tr(v)) for k, v in _EFFECT_TABLES]
    if name == "STAFFING_HEADERS":
        return {k: i18n.tr(v, "column") for k, v in _STAFFING_HEADERS.items()}
    if name == "RECOMMENDATION_HEADERS":
        return {k: i18n.tr(v, "column") for k, v in _RECOMMENDATION_HEADERS.items()}
    if name == "SOURCE_NAMES":
        return {k: i18n.tr(v) for k, v in _SOURCE_NAMES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SOURCE_NAMES = {"survey": N_("customer survey"), "process_times": N_("queue-system log"),
                 "benchmark": N_("competitor benchmark"), "service_requests": N_("service-request log")}
_SOURCE_WHAT = {"process_times": N_("process times, queues, staffing and the process indicators"),
                "benchmark": N_("the competitor comparison"),
                "service_requests": N_("the contact centre, the AI assistant and complaints")}


def intro(ctx: Context) -> P.Md:
    s = ctx.study
    m = ctx.current.manifest["rows"]
    parts = [P.md("{} valid questionnaires (of {})", P.fmt_int(m["survey"]["kept"]), P.fmt_int(m["survey"]["read"]))]
    if ctx.has("process_times"):
        n_br = ctx.current.columns("process_times", ["branch_id"])["branch_id"].nunique()
        n_t = m["process_times"]["kept"]
        parts.append(P.md("{} from {}", P.nmd("{} queue ticket", "{} queue tickets", n_t, P.fmt_int(n_t)),
                          P.nmd("{} branch", "{} branches", n_br, P.fmt_int(n_br))))
    if ctx.has("benchmark"):
        n_b = ctx.current.benchmark["bank"].nunique()
        parts.append(P.md("a benchmark of {}", P.nmd("{} bank", "{} banks", n_b, P.fmt_int(n_b))))
    org = i18n.pick(s, "organisation") if s.organisation else _("the bank")
    if ctx.baseline is not None:
        text = P.md("This report evaluates the service quality of {org} in {q} against the baseline {b}. It draws on {parts}.",
                    org=org, q=_q(ctx.quarter), b=_q(ctx.baseline_quarter), parts=_and(parts))
    else:
        text = P.md("This report evaluates the service quality of {org} in {q}. It draws on {parts}.",
                    org=org, q=_q(ctx.quarter), parts=_and(parts))
    missing = missing_sources(ctx)
    if missing:
        text = P.join([text, sources_sentence(ctx, requests=False)])
    return P.join([text, P.md("Every figure is computed from these data by the `study` toolkit; Appendix A lists the "
                              "methods and the rules that generate the text, Appendix B the data quality and Appendix C "
                              "the inputs, parameters and software versions.")])


def missing_sources(ctx: Context) -> list[str]:
    """The data sources the toolkit reads that this quarter did not supply (in the order of the chapters)."""
    return [d for d in ("process_times", "benchmark") if not ctx.has(d)]


def sources_sentence(ctx: Context, requests: bool = True) -> P.Md:
    """Appendix B's one sentence on the sources not supplied (and what the report leaves out for them). The request
    log (issue 12) is named when ``requests`` (Appendix B); the summary's introduction passes False and reads as it
    did before the request log existed."""
    missing = missing_sources(ctx) + ([] if ctx.has("service_requests") or not requests else ["service_requests"])
    if not missing:
        return P.md("Every data source the toolkit reads was supplied: {}.", _and(i18n.tr(v) for v in _SOURCE_NAMES.values()))
    return P.md("Not supplied for {}: {}; the report leaves out {}.", _q(ctx.quarter),
                _and(i18n.tr(_SOURCE_NAMES[d]) for d in missing), _and(i18n.tr(_SOURCE_WHAT[d]) for d in missing))


def headline_notes(ctx: Context) -> list[P.Md]:
    has_sqi = analysis.sqi_table(ctx) is not None
    sqi = [P.md("The SQI is a weighted index of normalised indicators (Chapter 2); it has no sampling distribution and is "
                "not tested.")] if has_sqi else []
    if ctx.baseline is None:
        return [P.md("Means and shares over all valid questionnaires and tickets of the quarter.") if ctx.has("process_times")
                else P.md("Means and shares over all valid questionnaires of the quarter.")] + sqi
    tests = [P.md("Welch t for means"), P.md("two-proportion test (continuity-corrected) for shares")]
    if "nps" in mx.registry(ctx.study):
        tests.append(P.md("z test of the NPS difference"))
    if ctx.study.sampling is not None:   # survey figures on the sampling design (study.report.design_analysis)
        tests = [P.md("design-based t for the survey figures (weighted, Taylor-linearised)")] + (
            [P.md("Welch t for the queue log's means"), P.md("two-proportion test (continuity-corrected) for its shares")]
            if ctx.has("process_times") else [])
    return [P.md("Change = {} − {}; shares in percentage points (pp). Tests: {}; CI at {}; α = {} (rule CHANGE).",
                 ctx.quarter, ctx.baseline_quarter, _comma(tests), _level(ctx),
                 P.fmt_num(ctx.study.alpha, 2, leading_zero=False))] + sqi


def target_notes(ctx: Context) -> list[P.Md]:
    from study.report.requests import point_target_notes  # channel coverage: census or sample (issue 12)

    return point_target_notes(ctx) + [
        P.md("Met: the whole confidence interval is on the right side of the threshold; not met: wholly on the wrong side; "
                 "not distinguishable: the interval contains the threshold. Change targets compare with the baseline over all "
                 "branches.")]


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
        return skipped_sentence("The driver analysis of overall satisfaction", drv["skipped"])
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
            P.md("the leader, {}, scores {}", best["bank"], P.fmt_num(best["composite_index"], 1)))
    return P.md("On the composite benchmark index (weights of study.yml, metrics normalised 0-100 across the banks) our bank "
                "scores {} and ranks {} of {}; {}.", P.fmt_num(ours["composite_index"], 1), int(ours["rank"]), len(c), lead)


def radar_points(ctx: Context, bench: dict) -> pd.DataFrame:
    t = bench["table"]
    return t.assign(metric=t["metric"].map(ctx.study.label))[["bank", "metric", "score"]]


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


def problems_intro(ctx: Context, found: pd.DataFrame) -> P.Md:
    if found.empty:
        return P.md("No problem was found in {} by the rules of Appendix A.", _q(ctx.quarter))
    k, n_areas = len(found), found["area"].nunique()
    return P.nmd("{} problem was found in {}, in {}. Each comes from a rule of Appendix A applied to the results of "
                 "Chapter 2, with the evidence beside it.",
                 "{} problems were found in {}, in {}. Each comes from a rule of Appendix A applied to the results of "
                 "Chapter 2, with the evidence beside it.", k, P.fmt_int(k), _q(ctx.quarter),
                 P.nmd("{} area", "{} areas", n_areas, P.fmt_int(n_areas)))


def measures_intro(ctx: Context) -> P.Md:
    """What the chapter lists, true for any number of measures, with or without control branches and starts."""
    from study.report.analysis import measure_plan

    n = len(ctx.study.measures)
    if n == 0:
        return P.md("The study definition lists no improvement measures, so there is nothing to evaluate in this chapter "
                    "or in Chapter 5.")
    plan = measure_plan(ctx)
    with_control = sum(bool(m.control) for m in ctx.study.measures)
    text = [P.nmd("The study definition lists {} improvement measure.", "The study definition lists {} improvement measures.",
                  n, n)]
    if with_control == n:
        text.append(P.nmd("It runs in pilot branches from its start date, while control branches continue as before, so "
                          "that its effect can be separated from the change every branch saw (Chapter 5).",
                          "Each runs in pilot branches from its start date, while control branches continue as before, so "
                          "that its effect can be separated from the change every branch saw (Chapter 5).", n))
    elif with_control == 0:
        text.append(P.nmd("It has no control branches, so its effect is judged by the before/after change in the pilot "
                          "branches alone, weaker evidence than a comparison with control branches (Chapter 5).",
                          "None has no control branches, so each one's effect is judged by the before/after change in the "
                          "pilot branches alone, weaker evidence than a comparison with control branches (Chapter 5).", n))
    else:
        first = P.nmd("{} of them has control branches that continued as before, so that the effect can be separated "
                      "from the change every branch saw;", "{} of them have control branches that continued as before, so "
                      "that the effect can be separated from the change every branch saw;", with_control, with_control)
        rest = P.nmd("the other {} is judged by the before/after change in the pilot branches alone, weaker evidence "
                     "(Chapter 5).", "the other {} are judged by the before/after change in the pilot branches alone, "
                     "weaker evidence (Chapter 5).", n - with_control, n - with_control)
        text.append(P.join([first, rest]))
    counts = plan["status"].value_counts()
    words = {"introduced": lambda k: P.md("{} started in or just before {}", k, _q(ctx.quarter)),
             "sustained": lambda k: P.md("{} started in or before the baseline quarter (a sustained-effect comparison)", k),
             "planned": lambda k: P.md("{} start after {} (listed, not tested)", k, _q(ctx.quarter)),
             "not testable": lambda k: P.md("{} cannot be evaluated with these quarters", k)}
    if len(counts) > 1 or counts.index[0] != "introduced":
        text.append(P.md("Of these, {}.", _semi([words[s](k) for s, k in counts.items()])))
    return P.join(text)


def measure_description(ctx: Context, m) -> P.Md:
    """A measure's description, branches, metrics and the window it is evaluated in (rule EFFECT)."""
    from study.report.analysis import measure_plan

    p = measure_plan(ctx).set_index("measure").loc[m.id]
    labels = lambda ids: _comma([ctx.study.label(b) for b in ids], plain=True)   # noqa: E731
    parts = [P.md("{}", i18n.pick(m, "description"))] if m.description else []
    k = len(m.pilot)
    if p["status"] == "planned":
        first = P.nmd("Starts {} in {} pilot branch ({}); ", "Starts {} in {} pilot branches ({}); ", k, i18n.date(m.start),
                      k, labels(m.pilot))
    else:
        first = P.nmd("Started {} in {} pilot branch ({}); ", "Started {} in {} pilot branches ({}); ", k,
                      i18n.date(m.start), k, labels(m.pilot))
    if m.control:
        c = len(m.control)
        parts.append(P.join([first, P.nmd("{} control branch ({}).", "{} control branches ({}).", c, c, labels(m.control))],
                            sep=""))
    else:
        parts.append(P.join([first, P.md("no control branches, so its effect can only be judged by the before/after "
                                         "change in the pilot branches (weaker evidence).")], sep=""))
    parts.append(P.md("Expected to move: {}.", _comma([_low(ctx.study.label(x)) for x in m.metrics], plain=True)))
    if p["status"] in ("introduced", "sustained"):
        parts.append(P.md("Evaluated in this report for its {} (before {}, after {}).", _reason(p["comparison"]),
                          _reason(p["before"]), _reason(p["after"])))
    else:
        parts.append(P.md("Not evaluated in this report: it {}.", _reason(p["reason"])))
    return P.join(parts)


def effects_period(ctx: Context) -> str:
    """The before → after periods of the tested measures, when they share one ("2025Q1 → 2025Q2"), else the quarters."""
    from study.report.analysis import measure_plan

    plan = measure_plan(ctx)
    tested = plan[plan["design"] != "not tested"]
    pairs = set(zip(tested["before"], tested["after"]))
    if len(pairs) == 1:
        b, a = pairs.pop()
        return f"{_reason(b)} → {_reason(a)}"
    return f"{_q(ctx.baseline_quarter)}–{_q(ctx.quarter)}" if ctx.baseline is not None else _q(ctx.quarter)


def effects_intro(ctx: Context) -> P.Md:
    """How the measures are evaluated, true for the designs and windows this study has."""
    from study.report.analysis import measure_plan

    if not ctx.study.measures:
        return P.md("The study defines no improvement measures, so there are no effects to evaluate.")
    plan = measure_plan(ctx)
    tested = plan[plan["design"] != "not tested"]
    if tested.empty:
        names = {m.id: _name(m) for m in ctx.study.measures}
        return P.join([P.md("No improvement measure can be evaluated with these quarters:")] +
                      [P.md("**{}** {};", names[r["measure"]], _reason(r["reason"])) for r in plan.to_dict("records")[:-1]] +
                      [P.md("**{}** {}.", names[r["measure"]], _reason(r["reason"])) for r in plan.to_dict("records")[-1:]])
    pairs = set(zip(tested["before"], tested["after"]))
    when = (P.md("between {} (before) and {} (after)", *map(_reason, next(iter(pairs)))) if len(pairs) == 1 else
            P.md("before and after each measure's start, in the periods of Chapter 4"))
    designs = set(tested["design"])
    if designs == {"difference-in-differences"}:
        how = P.md("in the pilot and in the control branches, and by difference-in-differences")
    elif designs == {"pilot before/after"}:
        how = P.md("in the pilot branches (no measure has control branches, so this is weaker evidence than a "
                   "difference-in-differences)")
    else:
        how = P.md("in the pilot branches, and for the measures with control branches also in the control branches and by "
                   "difference-in-differences (the others' before/after change is weaker evidence)")
    text = [P.md("Each metric a measure should move is compared {}, {}.", when, how)]
    if (tested["status"] == "sustained").any():
        text.append(P.md("For measures that started in or before the baseline quarter this is a sustained-effect "
                         "comparison: it shows whether the effect grew or held, not the effect of introducing them."))
    from study.report import design_analysis as dsa

    survey_metrics = dsa.SURVEY_METRICS | set(ctx.study.dimension_ids)
    if dsa.uses_design(ctx) and any(x in survey_metrics for m in ctx.study.measures for x in m.metrics):
        text.append(P.md("Survey figures are compared on the sampling design (weighted, design-based tests); the headline test "
                         "of each comparison of a queue-log figure is chosen by the rules of Appendix A. p-values are adjusted "
                         "by Holm (and Benjamini–Hochberg) over the metrics of a measure; power and the minimum detectable "
                         "effect (MDE) at 80 % power are shown."))
    else:
        text.append(P.md("The headline test of each comparison is chosen by the rules of Appendix A; p-values are adjusted by "
                         "Holm (and Benjamini–Hochberg) over the metrics of a measure; power and the minimum detectable "
                         "effect (MDE) at 80 % power are shown."))
    untested = plan[plan["design"] == "not tested"]
    if len(untested):
        names = {m.id: _name(m) for m in ctx.study.measures}
        text.append(P.join([P.md("Not tested here:")] + [P.md("**{}** ({}).", names[r["measure"]], _reason(r["reason"]))
                                                          for r in untested.to_dict("records")]))
    return P.join(text)


def effects_notes(ctx: Context, kind: str, ev: pd.DataFrame | None = None) -> list[str]:
    """Table notes; the DiD note names the p each column holds and which one the verdict uses."""
    if kind == "difference-in-differences":
        d = ev[(ev["analysis"] == kind) & ev["skipped"].eq("")] if ev is not None and not ev.empty else pd.DataFrame()
        boot = d[d["test"].eq("did_wild_bootstrap")] if len(d) else d
        from study.report import design as design_report

        design_note = design_report.did_note(ctx, d)
        if design_note and not d["test"].isin(["did_cluster", "did_wild_bootstrap"]).any():
            return [design_note + _(" Pre-trend: joint test of diverging trends of pilot and control within the before "
                                    "period (unweighted).")]
        note = (_("DiD of the queue-log figures (standard errors: clustered by branch): OLS with monthly period effects, "
                  "CR1 standard errors, t with G − 1 df; the estimate's CI and p (t test) come from this t test.") if design_note
                else _("DiD: OLS with monthly period effects, standard errors clustered by branch (CR1, t with G − 1 df); the "
                       "estimate's CI and p (cluster SE) come from this t test."))
        if len(boot):
            weights = ", ".join(sorted({str(w).capitalize() for w in boot.get("boot_weights", pd.Series(["webb"])) if w}))
            note += _(" With fewer than 30 clusters, p (wild bootstrap) is a restricted wild cluster bootstrap ({} "
                      "weights, B = {} draws, seed {}); it is the headline p: Holm and BH adjust it and the verdict (rule "
                      "EFFECT) uses it.").format(weights, P.fmt_int(boot['n_boot'].max()), ctx.seed)
        else:
            note += _(" The cluster-SE p is the headline p: Holm and BH adjust it and the verdict (rule EFFECT) uses it.")
        note += (_(" Pre-trend: joint test of diverging trends of pilot and control within the before period (unweighted and "
                   "clustered by branch for every figure, the survey figures too).") if design_note else
                 _(" Pre-trend: joint test of diverging trends of pilot and control within the before period."))
        return [note, design_note] if design_note else [note]
    notes = [_("Estimate = after − before. Shares in percentage points; NPS in points.") if "nps" in mx.registry(ctx.study)
             else _("Estimate = after − before. Shares in percentage points.")]
    from study.report import design as design_report

    design_note = design_report.before_after_note(ctx, ev, kind)
    if design_note:
        notes.append(design_note)
    if kind == "pilot before/after" and ev is not None and not ev.empty:
        pilot_only = [m for m in ctx.study.measures if not m.control and (ev["measure"] == m.id).any()]
        if pilot_only:
            notes.append(P.join([P.md("Without control branches (weaker evidence, rule EFFECT):")] +
                                [P.md("**{}**.", _name(m)) for m in pilot_only]))
    return notes


def effects_skipped(ctx: Context, ev: pd.DataFrame) -> P.Md:
    """The analyses that could not run, each with its reason (a notice under the effect tables)."""
    if ev is None or ev.empty:
        return P.Md("")
    sk = ev[ev["skipped"].ne("")]
    if sk.empty:
        return P.Md("")
    names = {m.id: _name(m) for m in ctx.study.measures}
    return P.Md("\n".join(P.md("- **{}**, {}, {}: not run — {}.", names.get(r["measure"], r["measure"]),
                               _low(_metric(ctx, r["metric"])), i18n.tr(r["analysis"], "analysis"), _reason(r["skipped"]))
                          for r in sk.to_dict("records")))


#: Names of the analyses of an effect evaluation (stored in English in the results, shown with i18n.tr).
ANALYSIS_NAMES = [NP_("analysis", "pilot before/after"), NP_("analysis", "control before/after"),
                  NP_("analysis", "difference-in-differences")]


def did_points(ctx: Context, ev: pd.DataFrame) -> pd.DataFrame:
    d = ev[(ev["analysis"] == "difference-in-differences") & ev["skipped"].eq("")].copy()
    d["unit"] = d["metric"].map(lambda m: _unit(m, ctx.study))
    d["label"] = d["metric"].map(lambda m: _metric(ctx, m))
    if d["measure"].nunique() > 1:
        names = {m.id: _name(m) for m in ctx.study.measures}
        d["label"] = d["measure"].map(names) + ": " + d["label"]
    return d[["label", "estimate", "ci_low", "ci_high", "unit"]]


def its_notes() -> list[str]:
    return [_("Segmented regression of the weekly mean on time, a level change and a slope change at the start date "
              "(Wagner et al. 2002); Newey–West (HAC) standard errors; the week containing the start date is left out. "
              "Each measure's own queue-log metrics; changes of times in minutes, of shares in percentage points.")]


def staffing_intro(ctx: Context) -> P.Md:
    sl = ctx.study.service_level
    return P.md("For each branch and opening hour, Erlang C (M/M/c) gives the counters needed so that {} of customers are "
                "called within {} minutes, from the hour's arrival rate and mean handling time; it is compared with the "
                "counters actually used (rule REC-STAFF).", P.fmt_pct(sl.target_share, 0), P.fmt_num(sl.waiting_target_minutes, 0))


def no_staffing_moves(ctx: Context) -> P.Md:
    return P.md("In every branch and hour the counters open match what Erlang C needs: no hour is short of counters and "
                "none has a spare one.")


def staffing_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Counters used: mean number of distinct counters serving in that hour over the quarter's days.")]


def conclusions(ctx: Context, head: pd.DataFrame, recs: pd.DataFrame) -> P.Md:
    parts = []
    if ctx.baseline is not None and "verdict" in head:
        better = [_metric(ctx, m) for m in head[head["verdict"] == "improved"]["metric"]]
        worse = [_metric(ctx, m) for m in head[head["verdict"] == "worsened"]["metric"]]
        first = P.md("{} improved", _and(map(_lc, better))) if better else P.md("no headline figure improved significantly")
        if worse:
            parts.append(P.md("Against {}, {}; {} worsened.", _q(ctx.baseline_quarter), first, _and(map(_lc, worse))))
        else:
            parts.append(P.md("Against {}, {}.", _q(ctx.baseline_quarter), first))
    if len(recs):
        k = len(recs)
        parts.append(P.md("The evidence leads to {}, each with the rule that produced it and its evidence.",
                          P.nmd("{} recommendation", "{} recommendations", k, P.fmt_int(k))))
    else:
        parts.append(P.md("No rule of Appendix A produced a recommendation from this quarter's results."))
    return P.join(parts)


def recommendation_notes() -> list[P.Md]:
    return [P.md("Rules in Appendix A. Recommendations are generated from this quarter's results; they are proposals for "
            "management to weigh, not decisions.")]


def methods_intro(ctx: Context) -> P.Md:
    return P.md("All tests are two-sided at α = {} with {} confidence intervals. Bootstrap intervals use {} resamples with "
                "seed {}. Survey analyses use listwise deletion per scale. Every statistic of the toolkit is checked in its "
                "test suite against R (psych, lavaan, semTools, effectsize, stats) or published values.",
                P.fmt_num(ctx.study.alpha, 2, leading_zero=False), _level(ctx), P.fmt_int(ctx.n_boot), ctx.seed)


def test_rules(ctx: Context | None = None) -> pd.DataFrame:
    """The rules choosing a comparison's test; with ``ctx``, only those that can apply to this study (no NPS
    rule without an NPS, no share rule without a share metric)."""
    from study.stats.effects import RULES as TEST_RULES

    rules = dict(TEST_RULES)
    if ctx is not None:
        kinds = {m.test_kind for m in mx.registry(ctx.study).values()}
        rules = {k: v for k, v in rules.items() if not (k.startswith("N") and "nps" not in kinds)
                 and not (k.startswith("B") and "binary" not in kinds)}
    return pd.DataFrame({pgettext("column", "Rule"): list(rules),
                         _("When it applies and what it chooses"): [i18n.tr(v) for v in rules.values()]})


def formulas(ctx: Context) -> list[tuple[str, str]]:
    """The formulas of Appendix A that this study's report uses."""
    out = []
    for tex, where in FORMULAS:
        if tex == SQI_FORMULA and not ctx.study.sqi:
            continue
        if "NPS" in tex and "nps" not in mx.registry(ctx.study):
            continue
        if "LMG" in tex and len(ctx.study.dimension_ids) < 2:
            continue
        if "D_{bt}" in tex and not any(m.control for m in ctx.study.measures):
            continue
        out.append((tex, i18n.tr(where)))
    return out


def thresholds() -> pd.DataFrame:
    from study.thresholds import thresholds_table

    t = thresholds_table()
    names = {"statistic": pgettext("column", "Statistic"), "label": pgettext("column", "Label"),
             "rule": pgettext("column", "Rule"), "reference": pgettext("column", "Reference")}
    return t.rename(columns=names)


def response_rate(ctx: Context, dq: pd.DataFrame) -> P.Md:
    s = dq[dq["dataset"] == "survey"]
    parts = [P.nmd("{}: {} valid of {} questionnaire, a valid response rate of {}",
                   "{}: {} valid of {} questionnaires, a valid response rate of {}", r["read"], _q(r["quarter"]),
                   P.fmt_int(r["kept"]), P.fmt_int(r["read"]), P.fmt_pct(r["kept_share"], 2)) for r in s.to_dict("records")]
    return P.md("{}. Rejected rows are kept, with their reasons, in `data/processed/<quarter>/rejected_<dataset>.csv`; "
                "raw files are never modified.", _semi(parts))


def quality_notes() -> list[P.Md]:
    return [P.md("Validation rules: Likert values out of range, missing or unparsable values, duplicate ids, straight-lining, "
            "dates outside the quarter, unknown branches, timestamps out of order, absurd durations, unknown benchmark metrics.")]


def rejection_notes(ctx: Context) -> list[P.Md]:
    return [P.md("Identifiers are pseudonymised (keyed hash) in processed data; direct identifiers and free text are dropped.")]


def provenance_intro() -> P.Md:
    return P.md("The same inputs and parameters give the same numbers. These are the SHA-256 hashes of the raw and processed data, "
            "the parameters of this run, the versions of the software and the commit of the toolkit.")


def start_label(measure) -> str:
    """Short label of a measure's start line in a time-series figure (the caption names the measure)."""
    return _("start {}").format(i18n.date(measure.start, "%d %b %Y"))
