"""Generated prose: findings, problems and recommendations from the results, by documented rules.

Every sentence the report writes about the data comes from a rule in :data:`RULES`; the methods
appendix prints this table, so a reviewer can see why a finding was raised or a recommendation
made. Functions take the result tables of :mod:`study.analysis` and return Markdown (and, for the
problems and recommendations, a DataFrame of the evidence).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import analysis, tables
from study import metrics as mx
from study import present as P
from study.analysis import Context, better_direction, effects

#: Business types more than this far over their standard handling time are a problem (per cent).
DEVIATION_PROBLEM_PCT = 20.0
#: A branch-hour whose saturation against the counters actually used reaches this is overloaded.
SATURATION_HIGH = 0.85

RULES = pd.DataFrame([
    ("CHANGE", "Headline change", "A change against the baseline is called an improvement or a deterioration only when "
     "its test is significant at the study's α (two-sided); otherwise 'no significant change', whatever the point estimate."),
    ("PRIORITY", "Dimensions to act on first", "Dimensions in the 'concentrate here' quadrant of the importance–performance "
     "analysis (LMG share at or above the mean share, score below the mean score), most important first; remaining places "
     "go to the important dimensions with the lowest scores, then to the lowest scores overall; the text says which clause "
     "chose each. Three are named (all of them when the questionnaire has fewer)."),
    ("PROBLEM-DIM", "Problem: dimension", "Each priority dimension is a problem, with its score, its rank by score and its "
     "share of the explained variance of overall satisfaction."),
    ("PROBLEM-PROCESS", "Problem: business type over standard",
     f"Business types whose mean handling time exceeds the standard of study.yml by more than {DEVIATION_PROBLEM_PCT:g} %, "
     "largest deviation first (at most three)."),
    ("PROBLEM-BRANCH", "Problem: branch service level",
     "Branches whose share of customers called within the waiting target is below the target share, lowest first (at most "
     f"three), with their busiest hour's saturation F against the counters actually used (F ≥ {SATURATION_HIGH:g} is high)."),
    ("PROBLEM-SCALE", "Problem: measurement", "Questionnaire scales below a reliability or validity threshold "
     "(Appendix A thresholds) are named, so their scores are read with care."),
    ("PROBLEM-BENCH", "Problem: competitor gap", "Competitor metrics where our bank ranks in the lower half."),
    ("EFFECT", "Effect of a measure", "Each measure is evaluated in the window its start date allows: started in the "
     "reported quarter, before against after its start; started in or before the baseline quarter, baseline against "
     "current quarter, a sustained-effect comparison (whether the effect grew or held, not the effect of introducing "
     "it); starting after the quarter, planned and not tested; without observations on both sides, not testable (the "
     "reason is given). With control branches, a measure improved a metric when the difference-in-differences (pilot vs "
     "control) is significant after Holm adjustment across the measure's metrics and points the right way; the p "
     "adjusted is the DiD's headline p: the restricted wild-cluster bootstrap p with fewer than 30 branches, else the "
     "cluster-SE t test (the table names both). Without control branches the pilot branches' before/after change is "
     "judged the same way and reported as weaker evidence: it cannot separate the measure from a change every branch "
     "saw. 'No evidence of change' otherwise. The control branches' own before/after change is reported beside it."),
    ("REC-MEASURE", "Recommendation: measure", "On each measure's first (primary) metric. DiD improved without a "
     "significant change in the control branches: roll out to the other branches; improved but the control branches "
     "changed too, or no evidence: review before extending; worsened: stop and review its design. Pilot branches only "
     "(no control): improved: confirm with control branches before a roll-out; no evidence: review before extending; "
     "worsened: review its design before continuing. Sustained-effect comparison: improved: continue; no evidence: "
     "continue and review, the quarters cannot show its introduction effect; worsened: review. Planned: evaluate once a "
     "quarter after its start is reported. Not testable: the reason and the data an evaluation needs."),
    ("REC-STAFF", "Recommendation: staffing", "Per branch, the hours where Erlang C needs more counters than are open "
     "and the hours with spare counters (needed < used − 0.5). The branches with the most counters missing (at most three) "
     "are named, with their spare hours to move counters from; when no branch is short, the branches with spare counters "
     "are named instead; when neither, nothing is said."),
    ("REC-FOCUS", "Recommendation: focus", "The priority dimensions become the focus of the next quarter's improvement plan."),
    ("REC-TARGET", "Recommendation: targets", "Targets not met, or not distinguishable from their threshold, stay on the "
     "plan with the gap stated."),
], columns=["rule", "name", "text"])


def _label(ctx: Context, key: str) -> str:
    return ctx.study.label(key)


def _fmt_metric(metric: str, value: float, study=None) -> str:
    """A metric's value in prose: the table's formatting, with the unit for minutes."""
    return tables.value(metric, value, study=study, unit=True)


def _fmt_change(metric: str, value: float, study=None) -> str:
    return tables.change(metric, value, study=study, unit=True)


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten", 11: "eleven", 12: "twelve"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 queue ticket", "3 banks", "1,204 questionnaires": the noun agrees with the number."""
    return f"{P.fmt_int(n)} {noun if int(n) == 1 else (plural or noun + 's')}"


def skipped_sentence(what: str, reason: str) -> P.Md:
    """The one sentence a report writes for an analysis the data could not support."""
    return P.md("{} was not carried out: {}.", what, reason)


def headline_sentences(ctx: Context, headline: pd.DataFrame) -> P.Md:
    """Rule CHANGE: one sentence per headline figure."""
    if ctx.baseline is None:
        return P.Md("There is no baseline quarter, so this report describes the quarter without comparisons.")
    parts = []
    study = ctx.study
    for r in headline.to_dict("records"):
        if r["metric"] == "sqi":
            if pd.isna(r.get("change")):
                parts.append(P.md("The Service Quality Index is {} of 100 (no baseline value; a composite index, not tested).",
                                  P.fmt_num(r["current"], 1)))
            else:
                parts.append(P.md("The Service Quality Index is {} of 100 ({} points against {}; a composite index, not tested).",
                                  P.fmt_num(r["current"], 1), P.fmt_num(r["change"], 1, sign=True), ctx.baseline_quarter))
            continue
        v = r.get("verdict", "not tested")
        m = r["metric"]
        if v == "not tested":
            if pd.isna(r.get("baseline")):
                parts.append(P.md("{}: {} (not measured in {}).", r["label"], _fmt_metric(m, r["current"], study),
                                  ctx.baseline_quarter))
            else:
                parts.append(P.md("{}: {} → {} (too few observations to test the change).", r["label"],
                                  _fmt_metric(m, r["baseline"], study), _fmt_metric(m, r["current"], study)))
            continue
        what = {"improved": "improved", "worsened": "worsened", "no significant change": "did not change significantly"}[v]
        parts.append(P.md("{} {}: {} → {} (change {}, {} CI {}, {}).", r["label"], what, _fmt_metric(m, r["baseline"], study),
                          _fmt_metric(m, r["current"], study), _fmt_change(m, r["change"], study), ctx.level_pct,
                          tables.ci(m, r["ci_low"], r["ci_high"], study=study), P.fmt_p(r["p"])))
    return P.Md("\n".join(f"- {p}" for p in parts))


def target_sentences(targets: pd.DataFrame) -> P.Md:
    n = len(targets)
    if n == 0:
        return P.Md("The study definition sets no targets.")
    status = targets["status"]
    met, notmet = int((status == "met").sum()), int((status == "not met").sum())
    unmeasured = int(status.isin(["not measured", "no baseline"]).sum())
    undecided = n - met - notmet - unmeasured
    parts = [f"{met} {'is' if met == 1 else 'are'} met", f"{notmet} not met"]
    if undecided:
        parts.append(f"{undecided} cannot be distinguished from the threshold with the data at hand (the confidence "
                     "interval contains it)")
    if unmeasured:
        parts.append(f"{unmeasured} cannot be measured with the data of this report")
    return P.Md(f"Of {count(n, 'target')}, " + ", ".join(parts[:-1]) + " and " + parts[-1] + ".")


def priority_sentence(ctx: Context, priorities: pd.DataFrame) -> P.Md:
    """Rule PRIORITY in words, saying which clause of the rule chose each dimension."""
    if priorities.empty:
        d = analysis.drivers(ctx)
        return skipped_sentence("The ranking of dimensions to act on", d["skipped"] if analysis.is_skipped(d) else
                                "there is no driver analysis")
    names = [P.md("**{}** (score {}, {} of the explained variance)", r["label"], P.fmt_num(r["performance"], 1),
                  P.fmt_pct(r["importance"])) for r in priorities.to_dict("records")]
    text = P.md("Act first on {}.", _and(names))
    k = len(priorities)
    clauses = priorities["clause"].value_counts()
    n_focus, n_imp, n_low = (int(clauses.get(c, 0)) for c in ("concentrate", "important_low", "low_score"))
    if k == 1 and len(ctx.study.dimension_ids) == 1:
        return P.md("{} The questionnaire has one dimension, so it is the only place to act (rule PRIORITY).", text)
    why = []
    if n_focus:
        why.append(("it falls" if k == 1 else "all fall" if n_focus == k else f"{n_focus} fall{'s' if n_focus == 1 else ''}")
                   + " in the 'concentrate here' quadrant: important for overall satisfaction and below the average score")
    else:
        why.append("no dimension falls in the 'concentrate here' quadrant")
    if n_imp:
        why.append(f"{n_imp} {'is an' if n_imp == 1 else 'are'} important dimension{'s' if n_imp != 1 else ''} (at or above "
                   "the mean importance) with the lowest scores among the rest")
    if n_low:
        why.append(f"{n_low} {'is' if n_low == 1 else 'are'} below the mean importance and chosen for the lowest score"
                   f"{'s' if n_low != 1 else ''}")
    return P.md("{} Rule PRIORITY: " + "; ".join(why) + ".", text)


def _lc(label: str) -> str:
    """A label mid-sentence: "Deposit and withdrawal" → "deposit and withdrawal"; acronyms ("NPS"), names
    and text without case (Chinese) unchanged."""
    label = str(label)
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def _and(items) -> P.Md:
    """"a", "a and b", "a, b and c" (items are escaped unless they are Md)."""
    items = [P.lit(x) for x in items]
    if len(items) <= 1:
        return P.join(items)
    return P.Md(", ".join(items[:-1]) + " and " + items[-1])


def problems(ctx: Context, priorities: pd.DataFrame, measurement: dict, process: dict | None, benchmark: dict | None,
             dims: pd.DataFrame) -> pd.DataFrame:
    """The problems found, each with its rule and the evidence (one row per problem). Analyses the
    data did not support (None or skipped) contribute nothing."""
    rows = []
    score_rank = dims.set_index("dimension")["score"].rank(ascending=False, method="min")
    for r in priorities.to_dict("records"):
        d = r["dimension"]
        rows.append({"area": "Satisfaction", "rule": "PROBLEM-DIM", "problem": r["label"],
                     "evidence": f"score {P.fmt_num(r['performance'], 1)} / 100 (rank {int(score_rank[d])} of {len(score_rank)} "
                                 f"by score); {P.fmt_pct(r['importance'])} of the explained variance of overall satisfaction"})
    if process is not None:
        bt = process["by_business_type"].sort_values("deviation_pct", ascending=False)
        for r in bt[bt["deviation_pct"] > DEVIATION_PROBLEM_PCT].head(3).to_dict("records"):
            rows.append({"area": "Process", "rule": "PROBLEM-PROCESS", "problem": _label(ctx, r["business_type"]),
                         "evidence": f"mean handling {P.fmt_num(r['handling_minutes_mean'], 1)} min against a standard of "
                                     f"{P.fmt_num(r['standard_minutes'], 0)} min ({P.fmt_num(r['deviation_pct'], 1, sign=True)} %); "
                                     f"first-pass yield {P.fmt_pct(r['first_pass_yield'])}"
                                     + (f"; improvement potential {P.fmt_num(r['improvement_potential'], 1)} min of cycle time"
                                        if pd.notna(r.get("improvement_potential")) else "")})
        sl = ctx.study.service_level
        br = process["by_branch_id"].sort_values("within_service_level")
        sat = process["saturation"]
        for r in br[br["within_service_level"] < sl.target_share].head(3).to_dict("records"):
            ev = (f"{P.fmt_pct(r['within_service_level'])} called within {P.fmt_num(sl.waiting_target_minutes, 0)} min (target "
                  f"{P.fmt_pct(sl.target_share, 0)}); mean wait {P.fmt_num(r['waiting_minutes_mean'], 1)} min")
            b = sat[sat["branch_id"] == r["branch_id"]].sort_values("saturation_used", ascending=False)
            if len(b) and pd.notna(b.iloc[0]["saturation_used"]):
                ev += f"; busiest hour {int(b.iloc[0]['hour']):02d}:00 with saturation F = {P.fmt_num(b.iloc[0]['saturation_used'], 2)}"
            rows.append({"area": "Queues", "rule": "PROBLEM-BRANCH", "problem": _label(ctx, r["branch_id"]), "evidence": ev})
    if not analysis.is_skipped(measurement):
        j = measurement["judgements"]
        bad = j[(j["ok"] == False) & j["statistic"].isin(["alpha", "omega_total", "cr", "ave", "htmt", "cfi", "rmsea"])]  # noqa: E712
        for what, g in bad.groupby("what", sort=False):
            rows.append({"area": "Measurement", "rule": "PROBLEM-SCALE",
                         "problem": "the measurement model" if what == "model" else _label(ctx, what),
                         "evidence": "; ".join(g["reason"].str.split(":").str[0])})
    if benchmark is not None:
        t = benchmark["table"]
        ours = t[t["bank"] == ctx.study.benchmark.our_bank]
        for r in ours[ours["rank"] > ours["n_banks"] / 2].to_dict("records"):
            rows.append({"area": "Competitors", "rule": "PROBLEM-BENCH", "problem": _label(ctx, r["metric"]),
                         "evidence": f"rank {r['rank']} of {r['n_banks']}: {P.fmt_num(r['value'], 1)} {r['unit']} against the best "
                                     f"{P.fmt_num(r['best_value'], 1)} and the competitors' average "
                                     f"{P.fmt_num(r['competitor_average'], 1)}"})
    return pd.DataFrame(rows, columns=["area", "problem", "evidence", "rule"])


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
            text += f" (+{lo})" if lo == hi else f" (+{lo} to +{hi})"
        out.append(text)
        i = j + 1
    return ", ".join(out)


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
            rows.append({"recommendation": P.md("Add counters at peak hours in {}" + (", moving them from off-peak hours"
                                                                                    if (worst["hours_spare"] != P.DASH).any() else "")
                                                + " ({}).", _and(worst["branch"]),
                                                "the branches with the most counters missing" if len(short) > 1 else
                                                "the branch with counters missing"),
                         "evidence": "; ".join(f"{r['branch']}: short {r['hours_short']}; spare {r['hours_spare']}"
                                               for r in worst.to_dict("records")),
                         "rule": "REC-STAFF"})
        elif not spare.empty:
            few = spare.head(3)
            rows.append({"recommendation": P.md("No branch is short of counters; {} could serve the same customers with fewer "
                                                "counters open in some hours.", _and(few["branch"])),
                         "evidence": "; ".join(f"{r['branch']}: spare {r['hours_spare']}" for r in few.to_dict("records")),
                         "rule": "REC-STAFF"})
    if not priorities.empty:
        rows.append({"recommendation": P.md("Focus next quarter's plan on {}.", _and(map(_lc, priorities["label"]))),
                     "evidence": "; ".join(f"{r['label']}: score {P.fmt_num(r['performance'], 1)}, importance {P.fmt_pct(r['importance'])}"
                                           for r in priorities.to_dict("records")),
                     "rule": "REC-FOCUS"})
    open_targets = targets[targets["status"].isin(["not met", "not distinguishable"])] if not targets.empty else targets
    for r in open_targets.to_dict("records"):
        shown = ((lambda x: P.fmt_pct(x, sign=True)) if r["kind"] == "relative_change" else
                 (lambda x: tables.change(r["metric"], x, study=ctx.study, unit=True)) if r["kind"] == "change" else  # noqa: B023
                 (lambda x: tables.value(r["metric"], x, study=ctx.study, unit=True)))  # noqa: B023 - each lambda is used in its own iteration
        rows.append({"recommendation": P.md("Keep the target “{}” on the plan ({}).", r["label"], r["status"]),
                     "evidence": f"observed {shown(r['observed'])} [{shown(r['ci_low'])}, {shown(r['ci_high'])}] "
                                 f"against {tables.OPERATORS.get(r['operator'], r['operator'])} {shown(r['target_value'])}",
                     "rule": "REC-TARGET"})
    scales = problems_found[problems_found["rule"] == "PROBLEM-SCALE"]
    for r in scales.to_dict("records"):
        rows.append({"recommendation": P.md("Revise the items of {} before the next wave.",
                                            r["problem"] if r["problem"] == "the measurement model" else f"the scale “{r['problem']}”"),
                     "evidence": r["evidence"], "rule": "PROBLEM-SCALE"})
    out = pd.DataFrame(rows, columns=["recommendation", "evidence", "rule"], dtype=object)   # object: pandas 3 str dtype drops Md
    out.insert(0, "no", np.arange(1, len(out) + 1))
    return out


def _unit(metric: str, study=None) -> str:
    """The unit a metric's estimates are in (DiD figure, ITS sentences), from the metric registry."""
    m = mx.lookup(metric, study)
    if m.style == "min":
        return "minutes"
    if m.kind == "share":
        return "share (0-1)"
    if m.kind == "nps":
        return "NPS points"
    if m.kind == "mean":
        return f"points ({m.unit} scale)" if m.unit else "points (answer scale)"
    return "points (0-100 score)"


def _design_words(design: str) -> tuple[str, str]:
    """(abbreviation of the estimate, p name) for a verdict's design."""
    return ("DiD", "Holm") if design == "difference-in-differences" else ("change", "Holm")


def effect_sentence(ctx: Context, verdicts: pd.DataFrame, its: pd.DataFrame | None) -> P.Md:
    """Rule EFFECT, in words, per measure: its window (introduced, sustained, planned, not testable), the
    design (DiD, or pilot before/after as weaker evidence), the verdicts, the pre-trend flag and the ITS
    of each of its queue-log metrics (or why there is none)."""
    from study.analysis import measure_plan

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
                            m.name, f"{m.start:%d %B %Y}", ctx.quarter))
            continue
        if p["status"] == "not testable":
            out.append(P.md("**{}** cannot be evaluated with these quarters: it {}.", m.name, p["reason"]))
            continue
        parts = [P.md("**{}** (pilot {}, control {}, from {}): ", m.name, ", ".join(m.pilot), ", ".join(m.control),
                      f"{m.start:%d %B %Y}") if m.control else
                 P.md("**{}** (pilot {}, from {}): ", m.name, ", ".join(m.pilot), f"{m.start:%d %B %Y}")]
        if p["status"] == "sustained":
            parts.append(P.md("it {}, so {} → {} is a sustained-effect comparison, which shows whether the effect grew or "
                              "held, not the effect of introducing the measure; ", p["reason"], p["before"], p["after"]))
        if p["design"] == "pilot before/after":
            parts.append(P.md("without control branches the evidence is the before/after change in the pilot branches "
                              "alone, weaker than a difference-in-differences because it cannot separate the measure "
                              "from a change every branch saw; "))
        abbr, _ = _design_words(p["design"])
        clauses = []
        for verdict, word in (("improved", "improved"), ("worsened", "worsened")):
            sel = v[v["verdict"] == verdict] if len(v) else v
            if len(sel):
                items = [P.md("{} ({} {}, {} CI {}, Holm {})", r["label"].lower(), abbr, tables.change(r["metric"], r["estimate"]),
                              ctx.level_pct, tables.ci(r["metric"], r["ci_low"], r["ci_high"]), P.fmt_p(r["p_holm"]))
                         for r in sel.to_dict("records")]
                clauses.append(P.join([P.Md(word + " "), P.join(items, sep=", ")], sep=""))
        none = v[v["verdict"] == "no evidence of change"] if len(v) else v
        if len(none):
            clauses.append(P.md("no evidence of change in {}", ", ".join(none["label"].str.lower())))
        untested = v[v["verdict"] == "not tested"] if len(v) else v
        if len(untested):
            clauses.append(P.md("not tested: {}", "; ".join(f"{r['label'].lower()} ({r['reason']})"
                                                         for r in untested.to_dict("records"))))
        parts.append(P.join(clauses, sep="; ") if clauses else P.md("nothing could be tested"))
        parts.append(P.Md("."))
        if not ev.empty and "pretrend_p" in ev:
            d = ev[(ev["measure"] == m.id) & (ev["analysis"] == "difference-in-differences")]
            flagged = d[d["pretrend_p"] < ctx.study.alpha]
            if len(flagged):
                parts.append(P.md(" The pre-trend test within the before period flags {}: pilot and control already drifted "
                                  "apart before the start, so read these DiD estimates with care.",
                                  ", ".join(f"{r['label'].lower()} ({P.fmt_p(r['pretrend_p'])})" for r in flagged.to_dict("records"))))
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
                 ctx.study.label(metric).lower(), tables.its_change(metric, pr["level_change"]),
                 P.fmt_num(pr["relative_level_change"] * 100, 1, sign=True) + " %", P.fmt_p(pr["level_p"]))
        if "control" in f.index:
            c = f.loc["control"]
            t = P.join([t, P.md(" and {} ({}) in the control branches", tables.its_change(metric, c["level_change"]),
                                P.fmt_p(c["level_p"]))], sep="")
        texts.append(P.join([t, P.Md(".")], sep=""))
    if fitted.empty and len(rows):
        texts.append(P.md(" No interrupted time series: {}.", its_reason(rows)))
    return P.join(texts, sep="")


def its_reason(rows: pd.DataFrame) -> str:
    """Why a measure has no fitted ITS, from its "not fitted" rows (the first distinct reasons)."""
    notes = [n for n in dict.fromkeys(rows.loc[rows["status"].ne("fitted"), "note"].astype(str)) if n]
    return "; ".join(notes[:2]) or "no weeks to fit"


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
            out.append(P.md("**{}** has no interrupted time series: {}.", m.name, its_reason(rows)))
    return P.Md(" ".join(out))


def its_caption(ctx: Context, m, metric: str) -> P.Md:
    """Caption of a measure's ITS figure for one of its metrics."""
    return P.md("Weekly {}, {} of “{}”, {}", ctx.study.label(metric).lower(),
                "pilot and control branches" if m.control else "pilot branches", m.name, effects_period(ctx))


def measure_recommendations(ctx: Context, verdicts: pd.DataFrame) -> list[dict]:
    """Rule REC-MEASURE: one recommendation per measure, by its status and design (see :data:`RULES`)."""
    rows = []
    for m in ctx.study.measures:
        v = verdicts[verdicts["measure"] == m.id] if verdicts is not None and not verdicts.empty else pd.DataFrame()
        status = v["status"].iloc[0] if len(v) and "status" in v else ("introduced" if len(v) else "not testable")
        design = v["design"].iloc[0] if len(v) and "design" in v else ("difference-in-differences" if m.control else "pilot before/after")
        if status == "planned":
            rows.append({"recommendation": P.md("Evaluate **{}** after it starts on {}, once a quarter after its start is "
                                                "reported.", m.name, f"{m.start:%d %B %Y}"),
                         "evidence": v["reason"].iloc[0] if len(v) else f"starts after {ctx.quarter}", "rule": "REC-MEASURE"})
            continue
        primary = v[v["metric"] == m.metrics[0]] if len(v) else v
        if status == "not testable" or primary.empty or primary.iloc[0]["verdict"] == "not tested":
            reason = primary.iloc[0]["reason"] if len(primary) else "no baseline/follow-up pair"
            rows.append({"recommendation": P.md("Plan an evaluation of **{}**: it cannot be evaluated with these quarters "
                                                "({}); compare a period before its start with one after it.", m.name, reason),
                         "evidence": reason, "rule": "REC-MEASURE"})
            continue
        primary = primary.iloc[0]
        abbr, _ = _design_words(design)
        improved = v[v["verdict"] == "improved"]["label"].tolist()
        ev = (f"{primary['label']}: {abbr} {tables.change(primary['metric'], primary['estimate'])} "
              f"{ctx.level_pct} CI {tables.ci(primary['metric'], primary['ci_low'], primary['ci_high'])}, "
              f"Holm-adjusted {P.fmt_p(primary['p_holm'])}"
              + (" (pilot branches only, no control)" if design == "pilot before/after" else "")
              + (" (sustained-effect comparison)" if status == "sustained" else "")
              + f"; improved: {', '.join(improved) if improved else 'none'}")
        verdict, label = primary["verdict"], primary["label"].lower()
        if status == "sustained":
            text = {"improved": P.md("Continue **{}**: {} kept improving between the quarters (sustained-effect "
                                     "comparison).", m.name, label),
                    "worsened": P.md("Review **{}**: {} worsened between the quarters although the measure was running.",
                                     m.name, label)}.get(verdict, P.md(
                        "Continue **{}** and review it: {} did not change significantly between the quarters; these "
                        "quarters cannot show the effect of introducing it.", m.name, label))
        elif design == "pilot before/after":
            text = {"improved": P.md("Confirm **{}** with control branches before rolling it out: {} improved in the "
                                     "pilot branches, but a before/after change without control branches cannot be "
                                     "separated from a change every branch saw.", m.name, label),
                    "worsened": P.md("Review the design of **{}** before continuing it: {} worsened in the pilot branches "
                                     "(before/after, no control branches).", m.name, label)}.get(verdict, P.md(
                        "Review **{}** before extending it: there is no evidence yet that it moved {} (pilot branches "
                        "only, no control branches).", m.name, label))
        elif verdict == "improved" and not primary["control_changed"]:
            others = [b for b in ctx.study.branch_ids if b not in m.pilot]
            text = P.md("Roll out **{}** to the other {} branches.", m.name, len(others))
        elif verdict == "worsened":
            text = P.md("Stop **{}** and review its design.", m.name)
        elif verdict == "improved":
            text = P.md("Review **{}** before extending it: {} improved against the control branches, but the control "
                        "branches changed significantly too.", m.name, label)
        else:
            text = P.md("Review **{}** before extending it: there is no evidence yet that it moved {}.", m.name, label)
        rows.append({"recommendation": text, "evidence": ev, "rule": "REC-MEASURE"})
    return rows


__all__ = ["RULES", "headline_sentences", "target_sentences", "priority_sentence", "problems", "staffing_moves",
           "recommendations", "effect_sentence", "better_direction"]


# ---------------------------------------------------------------------------------------------
# Chapter texts, notes and display helpers (each reads the results; none types a number)

SQI_FORMULA = r"\mathrm{SQI} = \sum_i W_i \, \frac{X_i - X_{\min}}{X_{\max} - X_{\min}}"
FORMULAS = [
    (SQI_FORMULA, "reversed, (X_max − X_i)/(X_max − X_min), for indicators where lower is better; X clipped to the historical range"),
    (r"\alpha = \frac{k}{k-1}\left(1 - \frac{\sum_j s_j^2}{s_X^2}\right)", "Cronbach's α of a scale of k items with sum score X"),
    (r"\omega = \frac{(\sum \lambda_j)^2}{(\sum \lambda_j)^2 + \sum \theta_j}", "McDonald's ω from a one-factor ML model of the scale"),
    (r"\mathrm{NPS} = 100\,(p - d), \quad \mathrm{SE} = 100\sqrt{\frac{p + d - (p - d)^2}{n}}", "p promoters (9-10), d detractors (0-6)"),
    (r"\mathrm{LMG}_j = \frac{1}{p!}\sum_{\pi} \left[R^2(S_j^{\pi} \cup \{j\}) - R^2(S_j^{\pi})\right]",
     "the average gain in R² from adding predictor j over all p! orders (Shapley value of R²)"),
    (r"y_{bt} = \alpha_b + \gamma_t + \delta \, D_{bt} + \varepsilon_{bt}",
     "difference-in-differences with period effects, δ the effect; SE clustered by branch"),
]
EFFECT_TABLES = [("pilot before/after", "Before/after in the pilot branches"),
                 ("control before/after", "Before/after in the control branches"),
                 ("difference-in-differences", "Difference-in-differences, pilot against control branches")]
STAFFING_HEADERS = {"branch": "Branch", "counters_used": "Counters in use (mean)", "hours_short": "Hours short of counters (counters to add)",
                    "hours_spare": "Hours with a spare counter"}
RECOMMENDATION_HEADERS = {"no": "No.", "recommendation": "Recommendation", "evidence": "Evidence", "rule": "Rule"}


def _q(ctx: Context) -> str:
    return ctx.quarter + (f" against {ctx.baseline_quarter}" if ctx.baseline is not None else "")


def no_baseline() -> str:
    return "There is no baseline quarter, so the effects of the improvement measures cannot be evaluated in this report."


SOURCE_NAMES = {"survey": "customer survey", "process_times": "queue-system log", "benchmark": "competitor benchmark",
                "service_requests": "service-request log"}


def intro(ctx: Context) -> P.Md:
    s = ctx.study
    m = ctx.current.manifest["rows"]
    parts = [P.md("{} valid questionnaires (of {})", P.fmt_int(m["survey"]["kept"]), P.fmt_int(m["survey"]["read"]))]
    if ctx.has("process_times"):
        n_br = ctx.current.process_times["branch_id"].nunique()
        parts.append(P.md("{} from {}", count(m["process_times"]["kept"], "queue ticket"), count(n_br, "branch", "branches")))
    if ctx.has("benchmark"):
        parts.append(P.md("a benchmark of {}", count(ctx.current.benchmark["bank"].nunique(), "bank")))
    text = P.md("This report evaluates the service quality of {org} in {q}{base}. It draws on {parts}.",
                org=s.organisation or "the bank", q=ctx.quarter,
                base=P.md(" against the baseline {}", ctx.baseline_quarter) if ctx.baseline is not None else P.Md(""),
                parts=_and(parts))
    missing = missing_sources(ctx)
    if missing:
        text = P.md("{} {}", text, sources_sentence(ctx))
    return P.md("{} Every figure is computed from these data by the `study` toolkit; Appendix A lists the methods and the "
                "rules that generate the text, Appendix B the data quality and Appendix C the inputs, parameters and software "
                "versions.", text)


def missing_sources(ctx: Context) -> list[str]:
    """The data sources the toolkit reads that this quarter did not supply (in the order of the chapters)."""
    return [d for d in ("process_times", "benchmark") if not ctx.has(d)]


def sources_sentence(ctx: Context) -> P.Md:
    """Appendix B's one sentence on the sources not supplied (and what the report leaves out for them)."""
    # the request log (issue 12) is named here only: the summary's introduction is as it was without one
    missing = missing_sources(ctx) + ([] if ctx.has("service_requests") else ["service_requests"])
    if not missing:
        return P.md("Every data source the toolkit reads was supplied: {}.", _and(SOURCE_NAMES.values()))
    what = {"process_times": "process times, queues, staffing and the process indicators",
            "benchmark": "the competitor comparison",
            "service_requests": "the contact centre, the AI assistant and complaints"}
    return P.md("Not supplied for {}: {}; the report leaves out {}.", ctx.quarter, _and(SOURCE_NAMES[d] for d in missing),
                _and(what[d] for d in missing))


def headline_notes(ctx: Context) -> list[P.Md]:
    has_sqi = analysis.sqi_table(ctx) is not None
    sqi = ["The SQI is a weighted index of normalised indicators (Chapter 2); it has no sampling distribution and is not "
           "tested."] if has_sqi else []
    if ctx.baseline is None:
        return [P.Md(x) for x in ["Means and shares over all valid questionnaires" +
                                  (" and tickets" if ctx.has("process_times") else "") + " of the quarter."] + sqi]
    tests = ["Welch t for means", "two-proportion test (continuity-corrected) for shares"]
    if "nps" in mx.registry(ctx.study):
        tests.append("z test of the NPS difference")
    return [P.md("Change = {} − {}; shares in percentage points (pp). Tests: " + ", ".join(tests) + "; CI at {}; α = {} "
                 "(rule CHANGE).", ctx.quarter, ctx.baseline_quarter, ctx.level_pct,
                 P.fmt_num(ctx.study.alpha, 2, leading_zero=False))] + [P.Md(x) for x in sqi]


def target_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Met: the whole confidence interval is on the right side of the threshold; not met: wholly on the wrong side; "
                 "not distinguishable: the interval contains the threshold. Change targets compare with the baseline over all "
                 "branches.")]


def measurement_intro(ctx: Context, meas: dict) -> P.Md:
    st = ctx.study
    n_rev = len(st.reverse_items)
    text = P.md("The questionnaire has {} in {}{}.", count(len(st.item_ids), "item"), count(len(st.dimension_ids), "dimension"),
                P.md(" ({} recoded before the analysis)", count(n_rev, "reverse-keyed item")) if n_rev else P.Md(""))
    if analysis.is_skipped(meas):
        return P.md("{} {}", text, skipped_sentence("The reliability and validity analysis", meas["skipped"]))
    k = meas["kmo"]
    if k is None:
        return P.md("{} KMO and Bartlett's test need more complete questionnaires than items and are left out.", text)
    suits = "suit" if k["kmo"] >= 0.6 and k["p"] < st.alpha else "do not clearly suit"
    return P.md("{} The items {} factor analysis: KMO = {}, Bartlett's test χ²({}) = {}, {}, n = {}.", text, suits,
                P.fmt_num(k["kmo"], 2, leading_zero=False), P.fmt_int(k["df"]), P.fmt_num(k["chi2"], 1), P.fmt_p(k["p"]),
                P.fmt_int(k["n"]))


def reliability_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("α: Cronbach's alpha with the Feldt interval; ω: McDonald's omega (one-factor ML model per dimension); CR and "
                 "AVE from the standardised loadings of the measurement model. Thresholds: α and CR ≥ .70, AVE ≥ .50 "
                 "(Appendix A).")]


def fit_notes(ctx: Context, meas: dict) -> list[P.Md]:
    k = len(ctx.study.dimension_ids)
    what = "The dimension as one factor" if k == 1 else f"All {k} dimensions as correlated factors"
    return [P.md(what + ", maximum likelihood, n = {}; RMSEA with its 90 % interval. Conventions of lavaan (χ² = N·F_ML).",
                 P.fmt_int(meas["cfa"].n))]


def validity_sentences(ctx: Context, meas: dict) -> P.Md:
    j = meas["judgements"]
    weak = j[(j["ok"] == False) & (j["statistic"].isin(["alpha", "cr", "ave"]))]["what"].unique()  # noqa: E712
    cfa = meas["cfa"]
    parts = []
    if cfa is None:
        parts.append(skipped_sentence("The confirmatory factor analysis", meas.get("cfa_skipped") or "it is not identified"))
    elif len(cfa.htmt) >= 2:
        h = cfa.htmt.where(~np.eye(len(cfa.htmt), dtype=bool)).stack()
        worst = h.idxmax()
        ok = "below" if h.max() < 0.85 else "at or above"
        parts.append(P.md("Discriminant validity: the largest heterotrait–monotrait ratio is {} ({} and {}; {} the threshold .85).",
                          P.fmt_num(h.max(), 2, leading_zero=False), ctx.study.label(worst[0]), ctx.study.label(worst[1]), ok))
    if len(weak):
        parts.append(P.md("Below threshold: {}; scores of these dimensions are less reliable and are read with care (rule "
                          "PROBLEM-SCALE).", _and(ctx.study.label(w) for w in weak)))
    elif cfa is not None:
        parts.append(P.Md("Every dimension meets the reliability and convergent-validity thresholds."))
    else:
        parts.append(P.Md("Every dimension meets the reliability threshold (α ≥ .70)."))
    return P.join(parts)


def satisfaction_sentences(ctx: Context, summary: pd.DataFrame) -> P.Md:
    cur = summary[summary["which"] == "current"].set_index("metric")
    st = ctx.study
    o = st.questionnaire.outcomes.overall_satisfaction
    c = cur.loc["csat_mean_0_100"]
    who = ("are satisfied or very satisfied" if (o.scale.min, o.scale.max) == (1, 5) else
           "answer {}–{} on the {} scale".format(*(f"{v:g}" for v in mx.top2_range(o.scale.min, o.scale.max)),
                                                mx.scale_text(o.scale.min, o.scale.max)))
    parts = [P.md("overall satisfaction is {} of 100 ({})", P.fmt_num(c["value"], 1), P.fmt_ci(c["ci_low"], c["ci_high"], 1)),
             P.md("{} " + who + " ({} %, Wilson)", P.fmt_pct(cur.loc["csat_top2", "value"]),
                  P.fmt_ci(cur.loc["csat_top2", "ci_low"] * 100, cur.loc["csat_top2", "ci_high"] * 100, 1))]
    if "nps" in cur.index:
        parts.append(P.md("the NPS is {} ({})", P.fmt_num(cur.loc["nps", "value"], 1),
                          P.fmt_ci(cur.loc["nps", "ci_low"], cur.loc["nps", "ci_high"], 1)))
    if "recommend_top2" in cur.index:
        parts.append(P.md("{} ({}; an NPS needs the eleven-point recommend scale)", P.fmt_pct(cur.loc["recommend_top2", "value"]),
                          P.md("{}", mx.get(st, "recommend_top2").label.lower())))
    if "complaint_rate" in cur.index:
        parts.append(P.md("{} of respondents complained", P.fmt_pct(cur.loc["complaint_rate", "value"])))
    return P.md("In {}, {} (n = {}).", ctx.quarter, _and(parts), P.fmt_int(c["n"]))


def score_notes(ctx: Context) -> list[P.Md]:
    sc_ = ctx.study.questionnaire.scale
    base = "p adjusted by Holm over the dimensions; g = Hedges' g." if ctx.baseline is not None else ""
    return [P.md("Score = (mean of the dimension's items − {lo}) / ({hi} − {lo}) × 100 on the {rng} item scale"
                 + (", reverse-keyed items recoded" if ctx.study.reverse_items else "")
                 + "; the convention of the seed report." + (" Change tested by Welch t; " + base if base else ""),
                 lo=f"{sc_.min:g}", hi=f"{sc_.max:g}", rng=mx.scale_text(sc_.min, sc_.max))]


def suppression_note(ctx: Context) -> list[P.Md]:
    if ctx.study.min_cell_size <= 1:
        return [P.Md("No group is suppressed: the study's minimum cell size is 1.")]
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
    what = (f"The {NUMBER_WORDS.get(k, P.fmt_int(k))} dimension scores explain" if k > 1 else "The dimension score explains")
    text = P.md(what + " R² = {} of the variance of overall satisfaction (adjusted {}, F({}, {}) = {}, {}, n = {}).",
                P.fmt_num(f["r2"], 2, leading_zero=False), P.fmt_num(f["adj_r2"], 2, leading_zero=False), int(f["f_df1"]),
                int(f["f_df2"]), P.fmt_num(f["f"], 1), P.fmt_p(f["f_p"]), P.fmt_int(f["n"]))
    if k > 1:
        text = P.md("{} {} is the strongest driver ({} of the explained variance).", text, top["label"], P.fmt_pct(top["share"]))
        text = P.md("{} {}", text, _vif_sentence(ctx, drv))
    o = drv["ologit"]
    if o is not None and k >= 3:
        tau, p = o.agreement["kendall_tau"], o.agreement["kendall_p"]
        sc_ = ctx.study.questionnaire.outcomes.overall_satisfaction.scale
        if tau >= 0.7 and pd.notna(p) and p < ctx.study.alpha:
            verdict = "ranks the drivers alike"
        elif tau > 0 and pd.notna(p) and p < ctx.study.alpha:
            verdict = "ranks the drivers in partial agreement"
        else:
            verdict = "does not reproduce the ranking (read the ranking with care)"
        text = P.md("{} As a robustness check, an ordered logit of the {} answer " + verdict + " (Kendall's τ = {}, {}).", text,
                    mx.scale_text(sc_.min, sc_.max), P.fmt_num(tau, 2), P.fmt_p(p))
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
    d = drv["model"].diagnostics.set_index("check")
    alpha = ctx.study.alpha
    bp = d.iloc[0]
    jb = d.iloc[1]
    n = int(drv["model"].fit["n"])
    parts = [P.md("Breusch–Pagan (Koenker) {}: {}", P.fmt_p(bp["p"]),
                  "the residual variance changes with the predictors, which the HC3 standard errors account for"
                  if bp["p"] < alpha else "no evidence that the residual variance changes with the predictors"),
             P.md("Jarque–Bera {}: {}", P.fmt_p(jb["p"]),
                  ("the residuals are not normal, but with n = {} the tests on coefficients remain reliable".format(P.fmt_int(n))
                   if n >= 200 else "the residuals are not normal; with a small sample, read p-values near the threshold with care")
                  if jb["p"] < alpha else "no evidence against normal residuals")]
    return [P.md("OLS with HC3 heteroscedasticity-consistent standard errors; β standardised coefficient; VIF variance inflation. "
                 "Diagnostics: {}.", P.Md("; ".join(parts)))]


def ipa_points(ctx: Context, drv: dict) -> pd.DataFrame:
    ipa = drv["ipa"]
    return ipa.assign(label=ipa["dimension"].map(ctx.study.label))


def ipa_notes(drv: dict) -> list[P.Md]:
    ipa = drv["ipa"]
    return [P.md("Quadrant lines at the means over the dimensions: importance {} of the explained variance, performance {}. "
                 "Highlighted: the dimensions to act on first (rule PRIORITY).", P.fmt_pct(ipa["importance_line"].iloc[0]),
                 P.fmt_num(ipa["performance_line"].iloc[0], 1))]


def benchmark_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Source: the quarter's competitor benchmark file. Ranks are direction-aware (lower is better for times).")]


def benchmark_sentences(ctx: Context, bench: dict) -> P.Md:
    c = bench["composite"]
    ours = c[c["is_our_bank"]].iloc[0]
    if len(c) == 1:
        return P.md("The benchmark file holds only our bank ({} on the composite index), so there is no competitor to compare "
                    "with.", P.fmt_num(ours["composite_index"], 1))
    best = c.iloc[0]
    lead = (P.Md("our bank leads") if bool(best["is_our_bank"]) else
            P.md("the leader, {}, scores {}", best["bank"], P.fmt_num(best["composite_index"], 1)))
    return P.md("On the composite benchmark index (weights of study.yml, metrics normalised 0-100 across the banks) our bank "
                "scores {} and ranks {} of {}; {}.", P.fmt_num(ours["composite_index"], 1), int(ours["rank"]), len(c), lead)


def radar_points(ctx: Context, bench: dict) -> pd.DataFrame:
    t = bench["table"]
    return t.assign(metric=t["metric"].map(ctx.study.label))[["bank", "metric", "score"]]


def process_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Deviation = (mean handling − standard) / standard; potential ΔT = mean cycle − ideal cycle (the seed report's "
                 "method). Handling = finished − started; cycle = finished − issued; percentiles are exact (linear "
                 "interpolation).")]


def process_sentences(ctx: Context, pt: dict) -> P.Md:
    bt = pt["by_business_type"].dropna(subset=["deviation_pct"]).sort_values("deviation_pct", ascending=False)
    parts = []
    if len(bt):
        over = bt[bt["deviation_pct"] > 0]
        w = bt.iloc[0]
        n = len(bt)
        if len(over) == n:
            lead = "Every business type takes longer than its standard" if n > 1 else "The business type takes longer than its standard"
        elif len(over) == 0:
            lead = ("Every business type is handled within its standard" if n > 1 else
                    "The business type is handled within its standard")
        else:
            lead = f"{len(over)} of {n} business types take longer than their standard"
        if len(over):
            parts.append(P.md(lead + "; {} deviates most ({} against {} min, {} %).", _lc(_label(ctx, w["business_type"])),
                              P.fmt_num(w["handling_minutes_mean"], 1), P.fmt_num(w["standard_minutes"], 0),
                              P.fmt_num(w["deviation_pct"], 1, sign=True)))
        else:
            parts.append(P.md(lead + " (the closest, {}, at {} %).", _lc(_label(ctx, w["business_type"])),
                              P.fmt_num(w["deviation_pct"], 1, sign=True)))
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
    t = ctx.current.process_times[["business_type", "handling_minutes"]]
    return t.assign(business=t["business_type"].map(ctx.study.label))


def standard_minutes(ctx: Context) -> dict:
    return {b.label: b.standard_minutes for b in ctx.study.business_types}


def branch_notes(ctx: Context) -> list[P.Md]:
    if analysis.sqi_table(ctx) is None:
        return []
    return [P.Md("SQI per branch from the branch's own indicators (weights and ranges of study.yml); suppressed for the "
                 "branches whose survey figures are suppressed, since the survey part could be solved for from the SQI "
                 "and the process figures beside it.")]


def saturation_sentences(ctx: Context, pt: dict) -> P.Md:
    s = pt["saturation"].dropna(subset=["saturation_used"])
    if s.empty:
        return P.Md("")
    hi = s[s["saturation_used"] >= SATURATION_HIGH]
    what = "Staff saturation F (offered workload / counters actually used) reaches {} or more in "
    if len(hi):
        text = P.md(what + "{} of {}, concentrated at {}.", f"{SATURATION_HIGH:g}", P.fmt_int(len(hi)),
                    count(len(s), "branch-hour"), _and(f"{int(h):02d}:00" for h in hi["hour"].value_counts().index[:3]))
    else:
        text = P.md(what + "none of the {}.", f"{SATURATION_HIGH:g}", count(len(s), "branch-hour"))
    dev = pt["littles_law"]["relative_discrepancy"].abs().dropna()
    if len(dev):
        text = P.md("{} As a consistency check of the timestamps, the queue length implied by Little's law (L = λW) differs from "
                    "the observed one by at most {} in any branch.", text, P.fmt_pct(dev.max(), 1))
    return text


def sqi_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Contribution = weight × normalised value × 100; the SQI is their sum. Ranges are the historical minimum and "
                 "maximum of study.yml; values outside are clipped.")]


def problems_intro(ctx: Context, found: pd.DataFrame) -> P.Md:
    if found.empty:
        return P.md("No problem was found in {} by the rules of Appendix A.", ctx.quarter)
    return P.md("{} found in {}, in {}. Each comes from a rule of Appendix A applied to the results of Chapter 2, with the "
                "evidence beside it.", P.Md(count(len(found), "problem") + (" was" if len(found) == 1 else " were")), ctx.quarter,
                count(found["area"].nunique(), "area"))


def measures_intro(ctx: Context) -> P.Md:
    """What the chapter lists, true for any number of measures, with or without control branches and starts."""
    from study.analysis import measure_plan

    n = len(ctx.study.measures)
    if n == 0:
        return P.md("The study definition lists no improvement measures, so there is nothing to evaluate in this chapter "
                    "or in Chapter 5.")
    plan = measure_plan(ctx)
    with_control = sum(bool(m.control) for m in ctx.study.measures)
    text = [P.md("The study definition lists {} improvement measure{}.", n, "s" if n != 1 else "")]
    if with_control == n:
        text.append(P.md("{} in pilot branches from its start date, while control branches continue as before, so that "
                         "its effect can be separated from the change every branch saw (Chapter 5).",
                         "It runs" if n == 1 else "Each runs"))
    elif with_control == 0:
        text.append(P.md("{} no control branches, so {} effect is judged by the before/after change in the pilot "
                         "branches alone, weaker evidence than a comparison with control branches (Chapter 5).",
                         "It has" if n == 1 else "None has", "its" if n == 1 else "each one's"))
    else:
        text.append(P.md("{} of them {} control branches that continued as before, so that the effect can be separated "
                         "from the change every branch saw; the other {} {} judged by the before/after change in the "
                         "pilot branches alone, weaker evidence (Chapter 5).", with_control,
                         "has" if with_control == 1 else "have", n - with_control, "is" if n - with_control == 1 else "are"))
    counts = plan["status"].value_counts()
    words = {"introduced": "started in or just before {}".format(ctx.quarter),
             "sustained": "started in or before the baseline quarter (a sustained-effect comparison)",
             "planned": "start after {} (listed, not tested)".format(ctx.quarter),
             "not testable": "cannot be evaluated with these quarters"}
    if len(counts) > 1 or counts.index[0] != "introduced":
        text.append(P.md("Of these, {}.", "; ".join(f"{k} {words[s]}" for s, k in counts.items())))
    return P.join(text)


def measure_description(ctx: Context, m) -> P.Md:
    """A measure's description, branches, metrics and the window it is evaluated in (rule EFFECT)."""
    from study.analysis import measure_plan

    p = measure_plan(ctx).set_index("measure").loc[m.id]
    labels = lambda ids: ", ".join(ctx.study.label(b) for b in ids)   # noqa: E731
    parts = [P.md("{}", m.description)] if m.description else []
    verb = "Starts" if p["status"] == "planned" else "Started"
    parts.append(P.md("{} {} in {} pilot branch{} ({}); ", verb, f"{m.start:%d %B %Y}", len(m.pilot),
                      "es" if len(m.pilot) != 1 else "", labels(m.pilot)))
    if m.control:
        parts[-1] = P.join([parts[-1], P.md("{} control branch{} ({}).", len(m.control),
                                            "es" if len(m.control) != 1 else "", labels(m.control))], sep="")
    else:
        parts[-1] = P.join([parts[-1], P.md("no control branches, so its effect can only be judged by the before/after "
                                            "change in the pilot branches (weaker evidence).")], sep="")
    parts.append(P.md("Expected to move: {}.", ", ".join(ctx.study.label(x).lower() for x in m.metrics)))
    if p["status"] in ("introduced", "sustained"):
        parts.append(P.md("Evaluated in this report for its {} (before {}, after {}).", p["comparison"], p["before"], p["after"]))
    else:
        parts.append(P.md("Not evaluated in this report: it {}.", p["reason"]))
    return P.join(parts)


def effects_period(ctx: Context) -> str:
    """The before → after periods of the tested measures, when they share one ("2025Q1 → 2025Q2"), else the quarters."""
    from study.analysis import measure_plan

    plan = measure_plan(ctx)
    tested = plan[plan["design"] != "not tested"]
    pairs = set(zip(tested["before"], tested["after"]))
    if len(pairs) == 1:
        b, a = pairs.pop()
        return f"{b} → {a}"
    return f"{ctx.baseline_quarter}–{ctx.quarter}" if ctx.baseline is not None else ctx.quarter


def effects_intro(ctx: Context) -> P.Md:
    """How the measures are evaluated, true for the designs and windows this study has."""
    from study.analysis import measure_plan

    if not ctx.study.measures:
        return P.md("The study defines no improvement measures, so there are no effects to evaluate.")
    plan = measure_plan(ctx)
    tested = plan[plan["design"] != "not tested"]
    if tested.empty:
        return P.join([P.md("No improvement measure can be evaluated with these quarters:")] +
                      [P.md("**{}** {};", r["name"], r["reason"]) for r in plan.to_dict("records")[:-1]] +
                      [P.md("**{}** {}.", r["name"], r["reason"]) for r in plan.to_dict("records")[-1:]])
    pairs = set(zip(tested["before"], tested["after"]))
    when = (P.md("between {} (before) and {} (after)", *next(iter(pairs))) if len(pairs) == 1 else
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
    text.append(P.md("The headline test of each comparison is chosen by the rules of Appendix A; p-values are adjusted by "
                     "Holm (and Benjamini–Hochberg) over the metrics of a measure; power and the minimum detectable "
                     "effect (MDE) at 80 % power are shown."))
    untested = plan[plan["design"] == "not tested"]
    if len(untested):
        text.append(P.join([P.md("Not tested here:")] + [P.md("**{}** ({}).", r["name"], r["reason"])
                                                          for r in untested.to_dict("records")]))
    return P.join(text)


def effects_notes(ctx: Context, kind: str, ev: pd.DataFrame | None = None) -> list[str]:
    """Table notes; the DiD note names the p each column holds and which one the verdict uses."""
    if kind == "difference-in-differences":
        d = ev[(ev["analysis"] == kind) & ev["skipped"].eq("")] if ev is not None and not ev.empty else pd.DataFrame()
        boot = d[d["test"].eq("did_wild_bootstrap")] if len(d) else d
        note = ("DiD: OLS with monthly period effects, standard errors clustered by branch (CR1, t with G − 1 df); the "
                "estimate's CI and p (cluster SE) come from this t test.")
        if len(boot):
            weights = ", ".join(sorted({str(w).capitalize() for w in boot.get("boot_weights", pd.Series(["webb"])) if w}))
            note += (f" With fewer than 30 clusters, p (wild bootstrap) is a restricted wild cluster bootstrap ({weights} "
                     f"weights, B = {P.fmt_int(boot['n_boot'].max())} draws, seed {ctx.seed}); it is the headline p: Holm "
                     "and BH adjust it and the verdict (rule EFFECT) uses it.")
        else:
            note += " The cluster-SE p is the headline p: Holm and BH adjust it and the verdict (rule EFFECT) uses it."
        note += " Pre-trend: joint test of diverging trends of pilot and control within the before period."
        return [note]
    notes = ["Estimate = after − before. Shares in percentage points" +
             ("; NPS in points." if "nps" in mx.registry(ctx.study) else ".")]
    if kind == "pilot before/after" and ev is not None and not ev.empty:
        pilot_only = [m for m in ctx.study.measures if not m.control and (ev["measure"] == m.id).any()]
        if pilot_only:
            notes.append(P.join([P.md("Without control branches (weaker evidence, rule EFFECT):")] +
                                [P.md("**{}**.", m.name) for m in pilot_only]))
    return notes


def effects_skipped(ctx: Context, ev: pd.DataFrame) -> P.Md:
    """The analyses that could not run, each with its reason (a notice under the effect tables)."""
    if ev is None or ev.empty:
        return P.Md("")
    sk = ev[ev["skipped"].ne("")]
    if sk.empty:
        return P.Md("")
    names = {m.id: m.name for m in ctx.study.measures}
    return P.Md("\n".join(P.md("- **{}**, {}, {}: not run — {}.", names.get(r["measure"], r["measure"]), r["label"].lower(),
                               r["analysis"], r["skipped"]) for r in sk.to_dict("records")))


def did_points(ctx: Context, ev: pd.DataFrame) -> pd.DataFrame:
    d = ev[(ev["analysis"] == "difference-in-differences") & ev["skipped"].eq("")].copy()
    d["unit"] = d["metric"].map(lambda m: _unit(m, ctx.study))
    if d["measure"].nunique() > 1:
        names = {m.id: m.name for m in ctx.study.measures}
        d["label"] = d["measure"].map(names) + ": " + d["label"]
    return d[["label", "estimate", "ci_low", "ci_high", "unit"]]


def its_notes() -> list[str]:
    return ["Segmented regression of the weekly mean on time, a level change and a slope change at the start date "
            "(Wagner et al. 2002); Newey–West (HAC) standard errors; the week containing the start date is left out. "
            "Each measure's own queue-log metrics; changes of times in minutes, of shares in percentage points."]


def staffing_intro(ctx: Context) -> P.Md:
    sl = ctx.study.service_level
    return P.Md(f"For each branch and opening hour, Erlang C (M/M/c) gives the counters needed so that "
            f"{P.fmt_pct(sl.target_share, 0)} of customers are called within {P.fmt_num(sl.waiting_target_minutes, 0)} minutes, "
            "from the hour's arrival rate and mean handling time; it is compared with the counters actually used (rule REC-STAFF).")


def no_staffing_moves(ctx: Context) -> P.Md:
    return P.Md("In every branch and hour the counters open match what Erlang C needs: no hour is short of counters and "
                "none has a spare one.")


def staffing_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Counters used: mean number of distinct counters serving in that hour over the quarter's days.")]


def conclusions(ctx: Context, head: pd.DataFrame, recs: pd.DataFrame) -> P.Md:
    parts = []
    if ctx.baseline is not None and "verdict" in head:
        better = head[head["verdict"] == "improved"]["label"].tolist()
        worse = head[head["verdict"] == "worsened"]["label"].tolist()
        parts.append(P.md("Against {}, {}{}.", ctx.baseline_quarter,
                          P.md("{} improved", _and(map(_lc, better))) if better else P.Md("no headline figure improved significantly"),
                          P.md("; {} worsened", _and(map(_lc, worse))) if worse else P.Md("")))
    if len(recs):
        parts.append(P.md("The evidence leads to {}, each with the rule that produced it and its evidence.",
                          count(len(recs), "recommendation")))
    else:
        parts.append(P.Md("No rule of Appendix A produced a recommendation from this quarter's results."))
    return P.join(parts)


def recommendation_notes() -> list[P.Md]:
    return [P.Md("Rules in Appendix A. Recommendations are generated from this quarter's results; they are proposals for "
            "management to weigh, not decisions.")]


def methods_intro(ctx: Context) -> P.Md:
    return P.Md(f"All tests are two-sided at α = {P.fmt_num(ctx.study.alpha, 2, leading_zero=False)} with {ctx.level_pct} "
            f"confidence intervals. Bootstrap intervals use {P.fmt_int(ctx.n_boot)} resamples with seed {ctx.seed}. Survey "
            "analyses use listwise deletion per scale. Every statistic of the toolkit is checked in its test suite against R "
            "(psych, lavaan, semTools, effectsize, stats) or published values.")


def test_rules(ctx: Context | None = None) -> pd.DataFrame:
    """The rules choosing a comparison's test; with ``ctx``, only those that can apply to this study (no NPS
    rule without an NPS, no share rule without a share metric)."""
    from study.effects import RULES as TEST_RULES

    rules = dict(TEST_RULES)
    if ctx is not None:
        kinds = {m.test_kind for m in mx.registry(ctx.study).values()}
        rules = {k: v for k, v in rules.items() if not (k.startswith("N") and "nps" not in kinds)
                 and not (k.startswith("B") and "binary" not in kinds)}
    return pd.DataFrame({"Rule": list(rules), "When it applies and what it chooses": list(rules.values())})


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
        out.append((tex, where))
    return out


def thresholds() -> pd.DataFrame:
    from study.thresholds import thresholds_table

    t = thresholds_table()
    return t.rename(columns=lambda c: str(c).replace("_", " ").capitalize())


def response_rate(ctx: Context, dq: pd.DataFrame) -> P.Md:
    s = dq[dq["dataset"] == "survey"]
    parts = [f"{r['quarter']}: {P.fmt_int(r['kept'])} valid of {count(r['read'], 'questionnaire')}, a valid response rate of "
             f"{P.fmt_pct(r['kept_share'], 2)}" for r in s.to_dict("records")]
    return P.Md("; ".join(parts) + ". Rejected rows are kept, with their reasons, in `data/processed/<quarter>/rejected_<dataset>.csv`; "
            "raw files are never modified.")


def quality_notes() -> list[P.Md]:
    return [P.Md("Validation rules: Likert values out of range, missing or unparsable values, duplicate ids, straight-lining, "
            "dates outside the quarter, unknown branches, timestamps out of order, absurd durations, unknown benchmark metrics.")]


def rejection_notes(ctx: Context) -> list[P.Md]:
    return [P.Md("Identifiers are pseudonymised (keyed hash) in processed data; direct identifiers and free text are dropped.")]


def provenance_intro() -> P.Md:
    return P.Md("The same inputs and parameters give the same numbers. These are the SHA-256 hashes of the raw and processed data, "
            "the parameters of this run, the versions of the software and the commit of the toolkit.")


def start_label(measure) -> str:
    """Short label of a measure's start line in a time-series figure (the caption names the measure)."""
    return f"start {measure.start:%d %b %Y}"
