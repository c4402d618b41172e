"""Chapter 6, conclusions and recommendations (rules REC-MEASURE, REC-STAFF, REC-FOCUS, REC-TARGET)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import i18n
from study.i18n import NP_, _
from study.report import present as P
from study.report import tables
from study.report.analysis import Context
from study.report.text.effects import staffing_moves
from study.report.text.words import _and, _comma, _design_words, _label, _lc, _level, _low, _metric, _name, _q, _reason, _semi


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


_RECOMMENDATION_HEADERS = {"no": NP_("column", "No."), "recommendation": NP_("column", "Recommendation"),
                           "evidence": NP_("column", "Evidence"), "rule": NP_("column", "Rule")}


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


def __getattr__(name: str):
    """The tables' captions and headers in the active language."""
    if name == "RECOMMENDATION_HEADERS":
        return {k: i18n.tr(v, "column") for k, v in _RECOMMENDATION_HEADERS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
