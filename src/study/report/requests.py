"""The report's sections on the service-request log: contact centre, AI assistant and complaints.

What each chapter shows of :func:`study.report.analysis.requests` (numbers from :mod:`study.stats.requests`, nothing computed
here except the choice of words): the current state (volumes, the 7x24 load, response and resolution times, the
24 h share, complaints by grade and per million visits, the AI assistant), the problems its rules find, the
channel measures (before/after, the document's claims, the interrupted time series) and a conclusion. Every
sentence comes from a rule that checks its premise on the data it states (rule ids in brackets, listed in
:data:`RULES` for the methods appendix). A quarter without a request log shows none of this; Appendix B says so
in one sentence (:func:`study.report.text.summary.sources_sentence`).

Text goes through the message catalogue of issue 14: sentences as ``P.md``/``nmd`` templates (one literal each),
headings and captions through ``_``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from study import i18n
from study.i18n import N_, _
from study.report import analysis
from study.report import present as P
from study.report.analysis import Context
from study.report.tables import digits_apart
from study.stats import requests as rq


def _quarter(q: str) -> str:
    return i18n.quarter(q)


def _date(d) -> str:
    return i18n.date(d)


_RULE_TEXTS = [
    ("REQ-VOLUME", N_("Requests: volume and load"),
     N_("Requests per channel and the busiest weekday-hour of the 7×24 load (average requests in that "
        "hour per such weekday).")),
    ("REQ-RESPONSE", N_("Requests: response"),
     N_("Share of requests first answered within each response target of the study definition, with "
        "its Wilson interval (a request never answered counts as not answered in time); the channel "
        "named as the slowest has the lowest share among channels with at least min_cell_size "
        "requests.")),
    ("REQ-COMPLAINTS", N_("Complaints per million visits"),
     N_("Complaints per million visits (the quarter's queue tickets and the digital sessions the "
        "study counts) with Garwood's exact Poisson interval; a target on it is met only when the "
        "whole interval lies below it, not met when the whole interval lies above it, otherwise the "
        "data cannot tell. With fewer than 20 complaints the text says that the interval decides.")),
    ("REQ-DEADLINE", N_("Complaints: deadlines"),
     N_("Complaints resolved after their grade's deadline, or not resolved, are named per grade; "
        "otherwise the text says that every complaint met its deadline.")),
    ("REQ-AI", N_("AI assistant"),
     N_("AI containment (resolved by the assistant) and handoff (escalated to a human) with Wilson "
        "intervals; the rating of requests the AI resolved against those a human handled with the "
        "test rules of Appendix A, called higher or lower only when significant at the study's α.")),
    ("REQ-MEASURE", N_("Measure on channels"),
     N_("A channel measure's requests before and after its start on its channels (Welch t for times, "
        "the test rules for the rating; 'rose'/'fell' only when significant), its claims met or not "
        "met only when the whole interval lies on one side, and the interrupted time series of the "
        "weekly means.")),
    ("PROBLEM-REQ-RESPONSE", N_("Problem: slow channel"),
     N_("A channel whose share answered within a response target lies wholly below the study's target "
        "for that share (Wilson interval).")),
    ("PROBLEM-REQ-DEADLINE", N_("Problem: complaints past the deadline"),
     N_("A complaint grade with complaints past its deadline.")),
    ("PROBLEM-REQ-COMPLAINTS", N_("Problem: complaint rate"),
     N_("Complaints per million visits wholly above the study's target (Garwood interval).")),
]


def rules_table() -> pd.DataFrame:
    """The request log's rules (``rule``, ``name``, ``text``) in the active language (Appendix A)."""
    return pd.DataFrame([(r, i18n.tr(n), i18n.tr(t)) for r, n, t in _RULE_TEXTS], columns=["rule", "name", "text"])


#: The rules in English (documentation and tests).
RULES = rules_table()


def weekday_names() -> dict[int, str]:
    """Short ISO weekday names for the heatmap's rows."""
    return {1: _("Mon"), 2: _("Tue"), 3: _("Wed"), 4: _("Thu"), 5: _("Fri"), 6: _("Sat"), 7: _("Sun")}


def weekday_long() -> dict[int, str]:
    """ISO weekday names for prose."""
    return {1: _("Monday"), 2: _("Tuesday"), 3: _("Wednesday"), 4: _("Thursday"), 5: _("Friday"), 6: _("Saturday"),
            7: _("Sunday")}


def _level_pct(ctx: Context) -> str:
    return _level(ctx)


def _level(ctx: Context) -> str:
    """The confidence level as the report's language writes a percentage ("95 %" / "95%")."""
    return i18n.percent(f"{ctx.level * 100:g}")


def _ci(lo, hi, kind: str = "pct", extra: int = 0) -> str:
    if lo is None or pd.isna(lo):
        return P.DASH
    if kind == "pct":
        return f"[{P.fmt_pct(lo, 1 + extra)}, {P.fmt_pct(hi, 1 + extra)}]"
    return f"[{P.fmt_num(lo, 2 + extra)}, {P.fmt_num(hi, 2 + extra)}]"


def _minutes(x) -> str:
    return P.fmt_num(x, 1)


def _small(ctx: Context, n: int) -> bool:
    return int(n) < ctx.study.min_cell_size


def _hidden(ctx: Context, groups: pd.DataFrame, key: str, n: str) -> set:
    """The groups (values of ``key``) whose figures are suppressed: those under min_cell_size and, when one alone
    is hidden beside others, the next smallest too (the total less the groups shown would give it back)."""
    chans = groups.sort_values([n, key], kind="stable")
    hidden = set(chans.loc[chans[n] < ctx.study.min_cell_size, key])
    if len(hidden) == 1 and len(chans) > 1:
        hidden.add(chans.loc[~chans[key].isin(hidden), key].iloc[0])
    return hidden


# ---------------------------------------------------------------------------------------------
# Tables (format, never compute)


def channel_table(ctx: Context, ch: dict) -> pd.DataFrame:
    """Requests, share, first-response and resolution percentiles and the share within each response target per
    channel; channels with fewer than min_cell_size requests show their count only."""
    study = ctx.study
    vol = ch["volume"].set_index("channel")
    times = ch["times_by_channel"]
    targets = [t.hours for t in study.service_requests.response_targets]
    rows = []
    # small groups: a channel under min_cell_size shows its count only; so does the total when the whole log is that
    # small, and, when one channel alone is hidden, the next smallest too (the total less the channels shown would
    # give it back)
    hidden = _hidden(ctx, times[times["channel"] != "(all)"], "channel", "n")
    for r in times.to_dict("records"):
        c = r["channel"]
        total = c == "(all)"
        small = _small(ctx, r["n"]) if total else c in hidden
        row = {_("Channel"): _("All channels") if total else study.label(str(c)) if c is not None else P.DASH,
               _("Requests"): P.fmt_int(r["n"]),
               _("Share"): P.fmt_pct(1.0 if total else vol.loc[c, "share"]) if total or c in vol.index else P.DASH,
               _("First response, median (min)"): P.DASH if small else _minutes(r["first_response_median"]),
               _("First response, 90th percentile (min)"): P.DASH if small else _minutes(r["first_response_p90"]),
               _("Resolution, median (h)"): P.DASH if small else P.fmt_num(r["resolution_median"] / 60, 1)}
        for h in targets:
            row[_("Answered within {} h").format(f"{h:g}")] = P.DASH if small else P.fmt_pct(r[f"share_within_{h:g}h"])
        rows.append(row)
    return pd.DataFrame(rows)


def grade_table(ctx: Context, ch: dict) -> pd.DataFrame:
    comp = ch["complaints"]
    rows = []
    for r in comp.to_dict("records"):
        total = r["grade"] == "(all)"
        rows.append({_("Grade"): _("All grades") if total else ctx.study.label(r["grade"]),
                     _("Deadline (h)"): P.DASH if total else P.fmt_num(r["deadline_hours"], 0),
                     _("Complaints"): P.fmt_int(r["complaints"]),
                     _("Resolved within the deadline"): P.fmt_int(r["within_deadline"]),
                     _("Share within the deadline"): P.fmt_pct(r["share_within_deadline"]) if r["complaints"] else P.DASH,
                     f"{_level_pct(ctx)} CI": _ci(r["share_ci_low"], r["share_ci_high"]) if r["complaints"] else P.DASH,
                     _("Resolution, median (h)"): P.fmt_num(r["resolution_hours_median"], 1)})
    return pd.DataFrame(rows)


def ai_table(ctx: Context, ch: dict) -> pd.DataFrame:
    rows = []
    # small groups as in channel_table: a channel (or the whole assistant) with fewer than min_cell_size
    # conversations shows its count only, with complementary suppression
    hidden = _hidden(ctx, ch["ai_by_channel"], "channel", "ai_started")
    for r in ch["ai_by_channel"].to_dict("records") + ch["ai"].to_dict("records"):
        total = "group" in r and r.get("group") == "(all)"
        small = _small(ctx, r["ai_started"]) if total else r["channel"] in hidden
        rows.append({_("Channel"): _("All channels") if total else ctx.study.label(str(r["channel"])),
                     _("AI conversations"): P.fmt_int(r["ai_started"]),
                     _("Resolved by the AI"): P.DASH if small else P.fmt_pct(r["containment"]),
                     f"{_level_pct(ctx)} CI": P.DASH if small else _ci(r["containment_ci_low"], r["containment_ci_high"]),
                     _("Handed to a human"): P.DASH if small else P.fmt_pct(r["handoff"]),
                     f"{_level_pct(ctx)} CI ": P.DASH if small else _ci(r["handoff_ci_low"], r["handoff_ci_high"])})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Sentences (each checks its premise)


def volume_sentences(ctx: Context, ch: dict) -> P.Md:
    """REQ-VOLUME."""
    vol = ch["volume"]
    n = int(vol["n"].sum())
    top = vol.sort_values(["n", "channel"], ascending=[False, True]).iloc[0]
    if len(vol) == 1:   # one channel: no "most used", and "1 over 1 channels" read wrong
        parts = [P.nmd("{} request was received in {}, through {}.", "{} requests were received in {}, all through {}.",
                       n, P.fmt_int(n), _quarter(ctx.quarter), ctx.study.label(str(top["channel"])))]
    else:
        parts = [P.md("Requests received in {}: {} over {} channels; the most used was {} with {} of them.",
                      _quarter(ctx.quarter), P.fmt_int(n), P.fmt_int(len(vol)), ctx.study.label(str(top["channel"])),
                      P.fmt_pct(top["share"]))]
    heat = ch["heatmap"]
    if heat["per_day"].notna().any() and heat["n"].sum() > 0 and not _small(ctx, heat["n"].sum()):
        peak = heat.loc[heat["per_day"].idxmax()]
        night = heat[heat["hour"] < 6]["per_day"].mean()
        parts.append(P.md("The load peaks on {} at {}:00 with {} requests an hour on average; between 00:00 and 06:00 it "
                          "averages {} an hour.", weekday_long()[int(peak["weekday"])], f"{int(peak['hour']):02d}",
                          P.fmt_num(peak["per_day"], 1), P.fmt_num(night, 1)))
    return P.join(parts)


def response_sentences(ctx: Context, ch: dict) -> P.Md:
    """REQ-RESPONSE."""
    times = ch["times_by_channel"]
    total = times.iloc[-1]
    if _small(ctx, total["n"]):   # the figures of fewer requests than min_cell_size are not shown (small groups)
        return P.md("With fewer than {} requests in {}, their response and resolution times are not shown.",
                    P.fmt_int(ctx.study.min_cell_size), _quarter(ctx.quarter))
    parts = []
    for t in ctx.study.service_requests.response_targets:
        col = f"within_{t.hours:g}h"
        p, lo, hi = rq.wilson(int(total[col]), int(total["n"]), ctx.level)
        parts.append(P.md("{} of the requests were first answered within {} h ({} CI {}).", P.fmt_pct(p), f"{t.hours:g}",
                          _level(ctx), _ci(lo, hi)))
        chans = times[times["channel"] != "(all)"]
        groups = chans[~chans["channel"].isin(_hidden(ctx, chans, "channel", "n"))]   # as the table shows them
        if len(groups) >= 2:
            low = groups.sort_values([f"share_{col}", "channel"]).iloc[0]
            parts.append(P.md("The lowest share was on {}: {}.", ctx.study.label(str(low["channel"])),
                              P.fmt_pct(low[f"share_{col}"])))
    parts.append(P.md("The median first response took {} min and the median resolution {} h.",
                      _minutes(total["first_response_median"]), P.fmt_num(total["resolution_median"] / 60, 1)))
    return P.join(parts)


def complaint_sentences(ctx: Context, ch: dict, targets: pd.DataFrame) -> P.Md:
    """REQ-COMPLAINTS and REQ-DEADLINE."""
    comp = ch["complaints"].set_index("grade")
    k = int(comp.loc["(all)", "complaints"])
    pm = ch["per_million"]
    parts = []
    if pm is None:
        parts.append(P.nmd("{} complaint was recorded in {}; no visits were counted, so there is no rate per million visits.",
                         "{} complaints were recorded in {}; no visits were counted, so there is no rate per million visits.",
                         k, P.fmt_int(k), _quarter(ctx.quarter)))
        return P.join(parts)
    row = targets[targets["metric"] == "complaints_per_million"] if len(targets) else targets
    # decimals that keep the rate and its bounds apart from a target's threshold (2.4996 is not written "2.50")
    e = digits_apart(lambda v, x: P.fmt_num(v, 2 + x), [pm["per_million"], pm["ci_low"], pm["ci_high"]],
                     list(row["target_value"]) if len(row) else [])

    def num(v):
        return P.fmt_num(v, 2 + e)

    parts.append(P.nmd("{} complaint was recorded in {} against {} visits: {} per million visits ({} CI {}).",
                     "{} complaints were recorded in {} against {} visits: {} per million visits ({} CI {}).",
                     k, P.fmt_int(k), _quarter(ctx.quarter), P.fmt_int(pm["visits"]), num(pm["per_million"]),
                     _level(ctx), _ci(pm["ci_low"], pm["ci_high"], "num", extra=e)))
    if len(row) and row.iloc[0]["kind"] == "level" and row.iloc[0]["status"] in ("met", "not met", rq.UNDECIDED):
        r = row.iloc[0]
        if k < 20:
            parts.append(P.md("With so few events the interval, not the point estimate, decides the target of {} per million "
                              "visits:", num(r["target_value"])))
        else:
            parts.append(P.md("Against the target of {} per million visits:", num(r["target_value"])))
        parts.append({"met": P.md("the whole interval lies below it, so it is met."),
                      "not met": P.md("the whole interval lies above it, so it is not met."),
                      rq.UNDECIDED: P.md("the interval contains it, so the data cannot tell whether it is met.")}[r["status"]])
    late = comp.drop(index="(all)")
    late = late[late["complaints"] > late["within_deadline"]]
    if k == 0:
        pass
    elif late.empty:
        parts.append(P.md("Every complaint was resolved within its grade's deadline."))
    else:
        items = [P.md("{}: {} of {}", ctx.study.label(g), P.fmt_int(r["complaints"] - r["within_deadline"]),
                      P.fmt_int(r["complaints"])) for g, r in late.iterrows()]
        parts.append(P.md("Resolved after the deadline or not yet resolved: {}.", P.join(items, _("; "))))
    return P.join(parts)


def ai_sentences(ctx: Context, ch: dict) -> P.Md:
    """REQ-AI."""
    if ch["ai"].empty:
        return P.md("No request in {} was handled by the AI assistant.", _quarter(ctx.quarter))
    a = ch["ai"].iloc[0]
    if _small(ctx, a["ai_started"]):   # small groups: the outcomes of a handful of conversations are not shown
        return P.nmd("The AI assistant started {} conversation in {}; with fewer than {}, its outcomes are not shown.",
                     "The AI assistant started {} conversations in {}; with fewer than {}, their outcomes are not shown.",
                     int(a["ai_started"]), P.fmt_int(a["ai_started"]), _quarter(ctx.quarter),
                     P.fmt_int(ctx.study.min_cell_size))
    parts = [P.md("The AI assistant started {} conversations: it resolved {} without a human ({} CI {}) and handed {} to a "
                  "human agent ({} CI {}).", P.fmt_int(a["ai_started"]), P.fmt_pct(a["containment"]), _level(ctx),
                  _ci(a["containment_ci_low"], a["containment_ci_high"]), P.fmt_pct(a["handoff"]), _level(ctx),
                  _ci(a["handoff_ci_low"], a["handoff_ci_high"]))]
    r = ch["rating_ai_vs_human"]
    if r is not None:
        from study.report.tables import test_text

        test, diff = test_text(dict(r)), P.fmt_num(r["estimate"], 2, sign=True)
        ci = _ci(r["ci_low"], r["ci_high"], "num")
        if r["p"] < ctx.study.alpha:
            word = P.md("higher") if r["estimate"] > 0 else P.md("lower")
            parts.append(P.md("Requests the AI resolved were rated {} than those a human handled: {} against {} (difference {}, "
                              "{} CI {}; {}).", word, P.fmt_num(r["after_value"], 2), P.fmt_num(r["before_value"], 2), diff,
                              _level(ctx), ci, test))
        else:
            parts.append(P.md("The post-contact rating of requests the AI resolved ({}) does not differ significantly from that "
                              "of requests a human handled ({}; difference {}, {} CI {}; {}).", P.fmt_num(r["after_value"], 2),
                              P.fmt_num(r["before_value"], 2), diff, _level(ctx), ci, test))
    return P.join(parts)


# ---------------------------------------------------------------------------------------------
# Chapters (called from the chapter notebooks; each shows nothing without a request log)


def current_state(ctx: Context) -> None:
    """Chapter 2: the contact centre, the AI assistant and complaints."""
    res = analysis.requests(ctx)
    if res is None:
        return
    ch = res["chapter"]
    q = _quarter(ctx.quarter)
    P.heading(_("Contact centre, AI assistant and complaints"))
    P.prose(volume_sentences(ctx, ch))
    P.table(channel_table(ctx, ch), _("Requests, response and resolution times by channel, {}").format(q),
            notes=[P.md("Channels with fewer than {} requests show their count only.", P.fmt_int(ctx.study.min_cell_size)),
                   P.md("First response: from receipt to the first answer; resolution: from receipt to resolution. A "
                        "request never answered counts as not answered in time.")])
    heat = ch["heatmap"]
    # small groups: a log smaller than min_cell_size would show when each of its few requests came in
    if heat["n"].sum() > 0 and not _small(ctx, heat["n"].sum()):
        from study.report import figures

        P.figure(figures.heatmap(heat, "weekday", "hour", "per_day", value_label=_("Requests per hour (average)"),
                                 row_label=_("Weekday"), col_label=_("Hour of day"), row_names=weekday_names()),
                 _("Requests by weekday and hour of day (7×24 load), average per hour, {}").format(q))
    P.prose(response_sentences(ctx, ch))
    if ctx.study.service_requests.complaint_grades:
        P.table(grade_table(ctx, ch), _("Complaints by grade and resolution within the deadline, {}").format(q))
    P.prose(complaint_sentences(ctx, ch, res["targets"]))
    if not ch["ai"].empty:
        P.table(ai_table(ctx, ch), _("AI assistant: containment and handoff by channel, {}").format(q),
                notes=[P.md("Resolved by the AI: conversations the assistant ended with the request resolved; handed to a "
                            "human: escalated to an agent. Intervals: Wilson.")])
    P.prose(ai_sentences(ctx, ch))


def problems(ctx: Context) -> pd.DataFrame:
    """The problems the request-log rules find (columns of :func:`study.report.text.problems.problems`)."""
    res = analysis.requests(ctx)
    cols = ["area", "rule", "problem", "evidence"]
    if res is None:
        return pd.DataFrame(columns=cols)
    ch, tg = res["chapter"], res["targets"]
    area = _("Contact centre and complaints")
    rows = []
    from study import metrics as mx

    for t in ctx.study.targets:
        for rt in ctx.study.service_requests.response_targets:
            if t.metric != mx.response_metric_id(rt.hours) or t.kind != "level" or t.operator != ">=":
                continue
            times = ch["times_by_channel"]
            hidden = _hidden(ctx, times[times["channel"] != "(all)"], "channel", "n")   # as channel_table hides them
            for r in times.to_dict("records"):
                if r["channel"] == "(all)" or r["channel"] in hidden:
                    continue
                p, lo, hi = rq.wilson(int(r[f"within_{rt.hours:g}h"]), int(r["n"]), ctx.level)
                if hi < t.value:
                    e = digits_apart(lambda v, x: P.fmt_pct(v, 1 + x), [p, lo, hi], [t.value])
                    rows.append({"area": area, "rule": "PROBLEM-REQ-RESPONSE",
                                 "problem": P.md("Slow first response on {}", ctx.study.label(str(r["channel"]))),
                                 "evidence": P.md("{} answered within {} h ({} CI {}), below the target of {}",
                                                  P.fmt_pct(p, 1 + e), f"{rt.hours:g}", _level(ctx), _ci(lo, hi, extra=e),
                                                  P.fmt_pct(t.value, 1 + e))})
    for g, r in ch["complaints"].set_index("grade").drop(index="(all)").iterrows():
        late = int(r["complaints"] - r["within_deadline"])
        if late > 0:
            rows.append({"area": area, "rule": "PROBLEM-REQ-DEADLINE",
                         "problem": P.md("Complaints past the deadline: {}", ctx.study.label(g)),
                         "evidence": P.md("{} of {} not resolved within {} h", P.fmt_int(late), P.fmt_int(r["complaints"]),
                                          P.fmt_num(r["deadline_hours"], 0))})
    pm = tg[(tg["metric"] == "complaints_per_million") & (tg["kind"] == "level") & (tg["status"] == "not met")] if len(tg) else tg
    for r in pm.to_dict("records"):
        e = digits_apart(lambda v, x: P.fmt_num(v, 2 + x), [r["observed"], r["ci_low"], r["ci_high"]], [r["target_value"]])
        rows.append({"area": area, "rule": "PROBLEM-REQ-COMPLAINTS", "problem": P.md("Complaints above the target rate"),
                     "evidence": P.md("{} per million visits ({} CI {}) against a target of {}", P.fmt_num(r["observed"], 2 + e),
                                      _level(ctx), _ci(r["ci_low"], r["ci_high"], "num", extra=e),
                                      P.fmt_num(r["target_value"], 2 + e))})
    # object dtype: pandas' string dtype would turn the Markdown cells (Md, values escaped as character references)
    # into plain text, which the table then escapes again ("91&#46;0 %" printed in Table 3.6)
    return pd.DataFrame(rows, columns=cols, dtype=object)


def with_problems(ctx: Context, found: pd.DataFrame) -> pd.DataFrame:
    """``found`` (:func:`study.report.text.problems.problems`) with the request-log problems appended."""
    more = problems(ctx)
    return pd.concat([found, more], ignore_index=True) if len(more) else found


def _effect_rows(ctx: Context, m, eff: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in eff[eff["measure"] == m.id].to_dict("records"):
        label = ctx.study.label(r["metric"])
        if r["status"] != "tested":
            rows.append({_("Metric"): label, _("Before"): P.DASH, _("After"): P.DASH, _("Change"): P.DASH,
                         f"{_level(ctx)} CI": P.DASH, _("Relative change"): P.DASH, _("Test"): i18n.tr(r["note"], "cell")})
            continue
        rows.append({_("Metric"): label, _("Before"): P.fmt_num(r["before"], 2), _("After"): P.fmt_num(r["after"], 2),
                     _("Change"): P.fmt_num(r["change"], 2, sign=True), f"{_level(ctx)} CI": _ci(r["ci_low"], r["ci_high"], "num"),
                     _("Relative change"): P.fmt_pct(r["relative_change"], sign=True),
                     _("Test"): P.fmt_p(r["p"])})
    return pd.DataFrame(rows)


def _claim_label(ctx: Context, claim_id: str, fallback: str) -> str:
    """A claim's label in the report's language (``label_zh`` in Chinese; the English one, marked, when missing)."""
    for m in ctx.study.service_requests.measures:
        for c in m.claims:
            if c.id == claim_id:
                return i18n.pick(c, "label")
    return fallback


def _claim_rows(ctx: Context, claims: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in claims.to_dict("records"):
        pct = r["kind"] == "relative_change"

        def g(x, extra, pct=pct):
            return P.fmt_pct(x, 1 + extra, sign=True) if pct else P.fmt_num(x, 2 + extra, sign=True)

        extra = digits_apart(g, [r["observed"], r["ci_low"], r["ci_high"]], [r["target_value"]])

        def f(x, g=g, extra=extra):
            return g(x, extra)
        rows.append({_("Claim"): _claim_label(ctx, r["target"], r["label"]), _("Observed"): f(r["observed"]),
                     f"{_level(ctx)} CI": P.DASH if pd.isna(r["ci_low"]) else f"[{f(r['ci_low'])}, {f(r['ci_high'])}]",
                     _("Threshold"): f"{r['operator'].replace('>=', '≥').replace('<=', '≤')} {f(r['target_value'])}",
                     _("Status"): i18n.tr(r["status"], "cell")})
    return pd.DataFrame(rows)


def measure_sentence(ctx: Context, m, eff: pd.DataFrame, its: pd.DataFrame) -> P.Md:
    """REQ-MEASURE: what changed on the measure's channels after its start."""
    name = P.lit(i18n.pick(m, "name"))
    channels = _and([ctx.study.label(c) for c in m.channels])
    parts = [P.md("{} started on {} on {}.", name, _date(m.start), channels)]
    from study.report.tables import change, value

    for r in eff[(eff["measure"] == m.id) & (eff["status"] == "tested")].to_dict("records"):
        label, mid = ctx.study.label(r["metric"]), r["metric"]
        if r["p"] < ctx.study.alpha:
            word = P.md("rose") if r["change"] > 0 else P.md("fell")
            parts.append(P.md("{} {} from {} to {} ({}, {} CI {}; {}; {}).", label, word,
                              value(mid, r["before"], ctx.study, unit=True), value(mid, r["after"], ctx.study, unit=True),
                              change(mid, r["change"], ctx.study, unit=True), _level(ctx),
                              _ci(r["ci_low"], r["ci_high"], "num"), P.fmt_pct(r["relative_change"], sign=True),
                              P.fmt_p(r["p"])))
        else:
            parts.append(P.md("{} did not change significantly ({} before, {} after; {}).", label,
                              value(mid, r["before"], ctx.study, unit=True), value(mid, r["after"], ctx.study, unit=True),
                              P.fmt_p(r["p"])))
    for r in its[(its["measure"] == m.id) & (its["status"] == "fitted")].to_dict("records"):
        if r["level_p"] < ctx.study.alpha:
            parts.append(P.md("The weekly series of {} shows a level change of {} at the start ({}).",
                              ctx.study.label(r["metric"]), change(r["metric"], r["level_change"], ctx.study, unit=True),
                              P.fmt_p(r["level_p"])))
    return P.join(parts)


def _lang() -> str:
    return i18n.language()


def _and(items) -> P.Md:
    """"a, b and c" / "甲、乙和丙" (the text modules' enumeration)."""
    from study.report.text.words import _and as enumerate_

    return enumerate_(items)


def _list(items) -> str:
    """Items of a table cell: "a, b" / "甲、乙"."""
    return ("、" if _lang() == "zh" else ", ").join(items)


def its_plot_data(weekly: pd.DataFrame, m, metric: str) -> pd.DataFrame:
    """The weekly series of one metric with the fitted segments and the pre-trend projection."""
    from study.stats.process import interrupted_time_series

    s = weekly[(weekly["measure"] == m.id) & (weekly["metric"] == metric) & (weekly["n"] > 0)].copy()
    s["week"] = pd.to_datetime(s["week"])
    r = interrupted_time_series(s, m.start)
    b = r.params.set_index("term")["estimate"]
    wk = s["week"].dt.date
    t = np.array([(d - wk.min()).days / 7.0 for d in wk])
    post = (wk >= m.start).to_numpy()
    transition = ((wk < m.start) & (wk.map(lambda d: d + pd.Timedelta(days=7)) > m.start)).to_numpy()
    t0 = t[post].min() if post.any() else np.nan
    pre = b["intercept"] + b["time"] * t
    s["fitted"] = np.where(transition, np.nan, pre + np.where(post, b["level_change"] + b["slope_change"] * (t - t0), 0.0))
    s["counterfactual"] = np.where(post, pre, np.nan)
    return s


def effects(ctx: Context) -> None:
    """Chapter 5: the improvement measures on channels (e.g. the AI assistant's launch)."""
    res = analysis.requests(ctx)
    if res is None or not ctx.study.service_requests.measures:
        return
    from study.report import figures

    eff, its, weekly, claims = res["measure_effects"], res["its"], res["weekly"], res["claims"]
    P.heading(_("Improvement measures on channels"))
    for m in ctx.study.service_requests.measures:
        P.prose(measure_sentence(ctx, m, eff, its))
        rows = _effect_rows(ctx, m, eff)
        if len(rows):
            P.table(rows, _("Before and after the start on the measure's channels: {}").format(i18n.pick(m, "name")),
                    notes=[P.md("Before: requests on these channels received before the start in the quarters compared; after: "
                                "from the start on. Times: Welch t; rating: the test rules of Appendix A.")])
        c = claims[claims["measure"] == m.id] if len(claims) else claims
        if len(c):
            P.table(_claim_rows(ctx, c), _("Claims of the measure against its before/after: {}").format(i18n.pick(m, "name")),
                    notes=[P.md("Met when the whole interval lies on the claimed side of the threshold; not met when it lies "
                                "wholly on the other side.")])
        if m.phases:
            P.table(phase_table(ctx, m), _("Phases of the plan and what this report's quarters show: {}").format(i18n.pick(m, "name")),
                    notes=[P.md("All requests of the quarter; a phase outside the quarters of this report has no data here.")])
        for r in its[(its["measure"] == m.id) & (its["status"] == "fitted")].to_dict("records"):
            data = its_plot_data(weekly, m, r["metric"])
            from study import metrics as mx

            unit = _(" (min)") if mx.lookup(r["metric"], ctx.study).style == "min" else ""
            P.figure(figures.its_plot(data, "week", "value", fitted="fitted", counterfactual="counterfactual",
                                      intervention=m.start, intervention_label=_("Start"),
                                      value_label=ctx.study.label(r["metric"]) + unit, time_label=_("Week")),
                     _("Weekly series of {} on the measure's channels with the fitted segments: {}").format(
                         ctx.study.label(r["metric"]), i18n.pick(m, "name")))


def conclusions(ctx: Context) -> P.Md | None:
    """Chapter 6: the request-log targets and the channel measures' claims in one or two sentences."""
    res = analysis.requests(ctx)
    if res is None:
        return None
    parts = []
    tg = res["targets"]
    if len(tg):
        met, notmet = int((tg["status"] == "met").sum()), int((tg["status"] == "not met").sum())
        und = int((tg["status"] == rq.UNDECIDED).sum())
        parts.append(P.md("Of the targets on the request log, met: {}; not met: {}; not distinguishable from the threshold: {}.",
                          P.fmt_int(met), P.fmt_int(notmet), P.fmt_int(und)))
    cl = res["claims"]
    for r in cl.to_dict("records") if len(cl) else []:
        if r["status"] == "not met":
            parts.append(P.md("The claim \u201c{}\u201d is not borne out by the data (observed {}).",
                              _claim_label(ctx, r["target"], r["label"]),
                              P.fmt_pct(r["observed"], sign=True) if r["kind"] == "relative_change"
                              else P.fmt_num(r["observed"], 2, sign=True)))
        elif r["status"] == "met":
            parts.append(P.md("The claim \u201c{}\u201d is met.", _claim_label(ctx, r["target"], r["label"])))
    return P.join(parts) if parts else None


def measures(ctx: Context) -> None:
    """Chapter 4: the improvement measures on channels (what, where, from when, what is claimed)."""
    if not ctx.study.has_requests or not ctx.study.service_requests.measures:
        return
    rows = []
    for m in ctx.study.service_requests.measures:
        rows.append({_("Measure"): i18n.pick(m, "name"), _("Start"): _date(m.start),
                     _("Channels"): _list(ctx.study.label(c) for c in m.channels),
                     _("Metrics"): _list(ctx.study.label(x) for x in m.metrics),
                     _("Claims"): _("; ").join(_claim_label(ctx, c.id, c.label) for c in m.claims) or P.DASH,
                     _("Phases"): _("; ").join(_("{}: {}").format(_quarter(p.quarter), i18n.pick(p, "label"))
                                               for p in m.phases) or P.DASH})
    P.heading(_("Improvement measures on channels"))
    P.table(pd.DataFrame(rows), _("Improvement measures on contact channels of the study definition"),
            notes=[P.md("Evaluated on the requests of these channels before and after the start (Chapter 5), instead of "
                        "pilot and control branches.")])
    for m in ctx.study.service_requests.measures:
        if m.description:
            P.prose(P.md("{}: {}", i18n.pick(m, "name"), i18n.pick(m, "description")))


GARWOOD = (r"\frac{\chi^2_{\alpha/2}(2x)}{2T} \leq \lambda \leq \frac{\chi^2_{1-\alpha/2}(2x+2)}{2T}")
WILSON = (r"\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}")


def formulas(ctx: Context) -> list[tuple[str, P.Md]]:
    """The methods appendix's formulas of the request log (none without one)."""
    if not ctx.study.has_requests:
        return []
    return [(GARWOOD, P.md("exact (Garwood) interval of a Poisson rate: x complaints in T visits, times 10⁶ per million "
                           "visits")),
            (WILSON, P.md("Wilson score interval of a share x/n (AI containment and handoff, requests answered in time, "
                          "complaints resolved within the deadline)"))]


def process_segments(ctx: Context) -> None:
    """Chapter 2, process times: waiting and handling by customer segment, when the queue log records the segment
    (the optional ``segment`` column of process times; issue 12, digest §2: mass, VIP and private-banking lanes).
    Segments with fewer than min_cell_size tickets show their count only."""
    pt = analysis.process(ctx)
    if pt is None or "by_segment" not in pt:
        return
    seg = pt["by_segment"]
    seg = seg[seg["segment"].notna() & (seg["segment"] != "<unknown>")]
    if seg.empty:
        return
    order = {x.id: i for i, x in enumerate(ctx.study.segments)}   # the study's order (mass, VIP, private banking)
    seg = seg.assign(_o=seg["segment"].astype(str).map(order).fillna(len(order))).sort_values(["_o", "segment"])
    rows = []
    # small groups, with complementary suppression: the bank-wide means beside the other segments would give back
    # one segment hidden alone
    hidden = _hidden(ctx, seg, "segment", "n")
    for r in seg.to_dict("records"):
        small = r["segment"] in hidden
        rows.append({_("Segment"): ctx.study.label(str(r["segment"])), _("Tickets"): P.fmt_int(r["n"]),
                     _("Waiting mean (min)"): P.DASH if small else P.fmt_num(r["waiting_minutes_mean"], 1),
                     _("Waiting p90 (min)"): P.DASH if small else P.fmt_num(r["waiting_minutes_p90"], 1),
                     _("Handling mean (min)"): P.DASH if small else P.fmt_num(r["handling_minutes_mean"], 1),
                     _("Handling median (min)"): P.DASH if small else P.fmt_num(r["handling_minutes_median"], 1)})
    P.table(pd.DataFrame(rows), _("Waiting and handling by customer segment, {}").format(_quarter(ctx.quarter)),
            notes=[P.md("Segments with fewer than {} tickets show their count only.", P.fmt_int(ctx.study.min_cell_size))])
    shown = seg[~seg["segment"].isin(hidden)]
    if len(shown) >= 2 and shown["waiting_minutes_mean"].nunique() > 1:
        lo = shown.loc[shown["waiting_minutes_mean"].idxmin()]
        hi = shown.loc[shown["waiting_minutes_mean"].idxmax()]
        P.prose(P.md("By customer segment, the mean wait ranged from {} min ({}) to {} min ({}).",
                     P.fmt_num(lo["waiting_minutes_mean"], 1), ctx.study.label(str(lo["segment"])),
                     P.fmt_num(hi["waiting_minutes_mean"], 1), ctx.study.label(str(hi["segment"]))))


def phase_table(ctx: Context, m) -> pd.DataFrame:
    """A channel measure's planned phases against what this report's quarters show (the quarter's AI
    conversations, containment and mean first response over all requests); a phase outside the report's quarters
    has no data here."""
    res = analysis.requests(ctx)
    levels = {}
    if res is not None:
        levels[ctx.quarter] = (res["chapter"]["levels"].set_index("metric"), res["chapter"]["ai"])
        if res["baseline_levels"] is not None:
            levels[ctx.baseline_quarter] = (res["baseline_levels"].set_index("metric"), None)
    rows = []
    for ph in m.phases:
        lv = levels.get(ph.quarter)
        row = {_("Phase"): i18n.pick(ph, "label"), _("Quarter"): _quarter(ph.quarter)}
        if lv is None:
            row.update({_("AI conversations"): P.DASH, _("Resolved by the AI"): P.DASH,
                        _("First response, mean (min)"): P.DASH, _("In this report"): _("no")})
        else:
            lev = lv[0]
            ai_n = lev.loc["ai_containment", "n"] if "ai_containment" in lev.index else 0
            row.update({_("AI conversations"): P.fmt_int(ai_n),
                        _("Resolved by the AI"): P.fmt_pct(lev.loc["ai_containment", "value"]) if ai_n else P.DASH,
                        _("First response, mean (min)"): P.fmt_num(lev.loc["request_first_response_minutes", "value"], 1),
                        _("In this report"): _("yes")})
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Seed §5: channel coverage and customer-information accuracy (study.stats.point_service)

_POINT_RULE_TEXTS = [
    ("POINT-COVERAGE", N_("Channel coverage"),
     N_("Covered units over all units the plan must reach, from the counts per quarter in the study definition. A "
        "census (every unit counted) gives an exact share without an interval: a target on it is met when the share "
        "is on the target's side of the threshold, otherwise not met. Counts from a sample of the units get a Wilson "
        "interval, and the interval decides as for every share.")),
    ("POINT-ACCURACY", N_("Customer-information accuracy"),
     N_("Tickets of the study's information-verification business type that passed at the first attempt, over "
        "those with a recorded first pass, with the Wilson interval; a target on it is met only when the whole "
        "interval lies on its side, not met when the whole interval lies on the other side, otherwise the data "
        "cannot tell.")),
]


def point_rules_table() -> pd.DataFrame:
    """The rules of channel coverage and information accuracy (``rule``, ``name``, ``text``), Appendix A."""
    return pd.DataFrame([(r, i18n.tr(n), i18n.tr(t)) for r, n, t in _POINT_RULE_TEXTS], columns=["rule", "name", "text"])


def _extra(ctx: Context, metric: str, values) -> int:
    """Decimals beyond one that percentages need not to be written as one of ``metric``'s target thresholds."""
    t = analysis.targets(ctx)
    thr = t.loc[t["metric"] == metric, "target_value"].tolist() if len(t) else []
    return digits_apart(lambda v, e: P.fmt_pct(v, 1 + e), values, thr)


def _target_verdicts(ctx: Context, metric: str) -> list[P.Md]:
    """One sentence per target of the study on ``metric``, saying its status in the targets table."""
    t = analysis.targets(ctx)
    out = []
    from study.report.tables import target_label

    for r in (t[t["metric"] == metric].to_dict("records") if len(t) else []):
        label = target_label(ctx.study, r)
        s = r["status"]
        if s == "met":
            out.append(P.md("The target “{}” is met.", label))
        elif s == "not met":
            out.append(P.md("The target “{}” is not met.", label))
        elif s == rq.UNDECIDED:
            out.append(P.md("Whether the target “{}” is met cannot be told: the interval contains its threshold.", label))
        else:
            out.append(P.md("The target “{}” cannot be measured with the data of this report.", label))
    return out


def coverage_sentences(ctx: Context, cov: dict) -> P.Md:
    """POINT-COVERAGE: the quarter's coverage, census or sample, and its targets' verdicts."""
    unit = i18n.pick(ctx.study.channel_coverage, "unit")
    q = _quarter(ctx.quarter)
    if not cov["total"]:
        return P.join([P.md("The study definition gives no channel-coverage counts for {}.", q)]
                      + _target_verdicts(ctx, "channel_coverage"))
    e = _extra(ctx, "channel_coverage", [cov["share"], cov.get("ci_low"), cov.get("ci_high")])
    if cov["census"]:
        first = P.md("In {}, {} of {} {} were covered by a service channel ({}). The counts cover every unit (a census), "
                     "so the share is exact and has no interval.", q, P.fmt_int(cov["covered"]), P.fmt_int(cov["total"]),
                     unit, P.fmt_pct(cov["share"], 1 + e))
    else:
        first = P.md("In {}, {} of {} sampled {} were covered by a service channel ({}, {} CI {}, Wilson).", q,
                     P.fmt_int(cov["covered"]), P.fmt_int(cov["total"]), unit, P.fmt_pct(cov["share"], 1 + e),
                     _level(ctx), _ci(cov["ci_low"], cov["ci_high"], extra=e))
    return P.join([first] + _target_verdicts(ctx, "channel_coverage"))


def accuracy_sentences(ctx: Context, acc: dict | None) -> P.Md:
    """POINT-ACCURACY: the share of verification tickets passed at the first attempt, and its targets' verdicts."""
    bt = ctx.study.label(ctx.study.information_accuracy.business_type)
    q = _quarter(ctx.quarter)
    if acc is None:
        first = P.md("{} supplied no queue data, so customer-information accuracy ({}) is not measured.", q, bt)
    elif not acc["n"] and acc.get("tickets"):
        first = P.nmd("{} ticket of the business type “{}” was recorded in {}, without a first-pass result, so "
                      "customer-information accuracy is not measured.",
                      "{} tickets of the business type “{}” were recorded in {}, none with a first-pass result, so "
                      "customer-information accuracy is not measured.", acc["tickets"], P.fmt_int(acc["tickets"]), bt, q)
    elif not acc["n"]:
        first = P.md("No ticket of the business type “{}” was recorded in {}, so customer-information accuracy is not "
                     "measured.", bt, q)
    else:
        e = _extra(ctx, "information_accuracy", [acc["share"], acc["ci_low"], acc["ci_high"]])
        first = P.md("Customer-information accuracy: {} of {} tickets of “{}” passed at the first attempt, {} ({} CI {}, "
                     "Wilson).", P.fmt_int(acc["passed"]), P.fmt_int(acc["n"]), bt, P.fmt_pct(acc["share"], 1 + e),
                     _level(ctx), _ci(acc["ci_low"], acc["ci_high"], extra=e))
    return P.join([first] + _target_verdicts(ctx, "information_accuracy"))


def point_service(ctx: Context) -> None:
    """Chapter 2: channel coverage and customer-information accuracy (seed §5), for a study that declares them;
    nothing otherwise."""
    res = analysis.point_service(ctx)
    if res is None:
        return
    P.heading(_("Channel coverage and customer-information accuracy"))
    parts = []
    if res["coverage"] is not None:
        parts.append(coverage_sentences(ctx, res["coverage"]))
    if ctx.study.information_accuracy is not None:
        parts.append(accuracy_sentences(ctx, res["accuracy"]))
    P.prose(P.join(parts))


def point_target_notes(ctx: Context) -> list[P.Md]:
    """The targets table's note on channel coverage: census (exact, no interval) or sample (Wilson), when the table
    has a coverage target."""
    if ctx.study.channel_coverage is None or not any(t.metric == "channel_coverage" for t in ctx.study.targets):
        return []
    if ctx.study.channel_coverage.census:
        return [P.md("Channel coverage is a census of all {}: its share is exact, shown without an interval, and met or "
                     "not met by the share itself.", i18n.pick(ctx.study.channel_coverage, "unit"))]
    return [P.md("Channel coverage is estimated from a sample of the {}, with a Wilson interval.",
                 i18n.pick(ctx.study.channel_coverage, "unit"))]
