"""Chapter 5, effect evaluation: the verdicts of the measures in words (rule EFFECT), the ITS and staffing (rule REC-STAFF)."""

from __future__ import annotations

import pandas as pd

from study import i18n
from study import metrics as mx
from study.i18n import N_, NP_, _
from study.report import present as P
from study.report import tables
from study.report.analysis import Context, effects
from study.report.text.words import (
    _comma,
    _design_words,
    _hour_ranges,
    _label,
    _level,
    _low,
    _metric,
    _name,
    _q,
    _reason,
    _semi,
    _unit,
)


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


_EFFECT_TABLES = [("pilot before/after", N_("Before/after in the pilot branches")),
                  ("control before/after", N_("Before/after in the control branches")),
                  ("difference-in-differences", N_("Difference-in-differences, pilot against control branches"))]


_STAFFING_HEADERS = {"branch": NP_("column", "Branch"), "counters_used": NP_("column", "Counters in use (mean)"),
                     "hours_short": NP_("column", "Hours short of counters (counters to add)"),
                     "hours_spare": NP_("column", "Hours with a spare counter")}


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


def start_label(measure) -> str:
    """Short label of a measure's start line in a time-series figure (the caption names the measure)."""
    return _("start {}").format(i18n.date(measure.start, "%d %b %Y"))


def __getattr__(name: str):
    """The tables' captions and headers in the active language."""
    if name == "EFFECT_TABLES":
        return [(k, i18n.tr(v)) for k, v in _EFFECT_TABLES]
    if name == "STAFFING_HEADERS":
        return {k: i18n.tr(v, "column") for k, v in _STAFFING_HEADERS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
