"""Chapter 1, executive summary: the introduction, headline figures, targets and where to act first (rules CHANGE, PRIORITY)."""

from __future__ import annotations

import pandas as pd

from study import i18n
from study import metrics as mx
from study.i18n import N_, _
from study.report import analysis, tables
from study.report import present as P
from study.report.analysis import Context
from study.report.text.words import (
    _and,
    _comma,
    _fmt_change,
    _fmt_metric,
    _label,
    _level,
    _metric,
    _q,
    _reason,
    _semi,
    skipped_sentence,
)


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
        return skipped_sentence(_("The ranking of dimensions to act on"), _reason(d["skipped"]) if analysis.is_skipped(d)
                                else _("there is no driver analysis"))
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


def __getattr__(name: str):
    """The tables' captions and headers in the active language."""
    if name == "SOURCE_NAMES":
        return {k: i18n.tr(v) for k, v in _SOURCE_NAMES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
