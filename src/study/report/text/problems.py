"""Chapter 3, problems found: one row per problem with its rule and evidence (rules PROBLEM-*)."""

from __future__ import annotations

import pandas as pd

from study import i18n
from study.i18n import _, pgettext
from study.report import analysis
from study.report import present as P
from study.report.analysis import Context
from study.report.text.current_state import improper_text
from study.report.text.rules import DEVIATION_PROBLEM_PCT
from study.report.text.words import _label, _q, _semi


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
                             r['rank'], r['n_banks'], P.fmt_num(r['value'], 1),
                             ctx.study.benchmark_unit(next(m for m in ctx.study.benchmark.metrics if m.id == r["metric"])),
                             P.fmt_num(r['best_value'], 1),
                             P.fmt_num(r['competitor_average'], 1))})
    # "what": the key a row is about (a dimension, "model", or two scales "a~b"), for the recommendation rules
    return pd.DataFrame(rows, columns=["area", "problem", "evidence", "rule", "what"])


def problems_caption(area: str, quarter: str) -> str:
    """Caption of a table of problems of one area ("Problems found: queues, 2025Q2")."""
    return _("Problems found: {}, {}").format(area.lower() if i18n.language() == "en" else area, i18n.quarter(quarter))


def problems_intro(ctx: Context, found: pd.DataFrame) -> P.Md:
    if found.empty:
        return P.md("No problem was found in {} by the rules of Appendix A.", _q(ctx.quarter))
    k, n_areas = len(found), found["area"].nunique()
    return P.nmd("{} problem was found in {}, in {}. Each comes from a rule of Appendix A applied to the results of "
                 "Chapter 2, with the evidence beside it.",
                 "{} problems were found in {}, in {}. Each comes from a rule of Appendix A applied to the results of "
                 "Chapter 2, with the evidence beside it.", k, P.fmt_int(k), _q(ctx.quarter),
                 P.nmd("{} area", "{} areas", n_areas, P.fmt_int(n_areas)))
