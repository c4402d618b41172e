"""Chapter 4, improvement measures: what each measure is and the window it is evaluated in."""

from __future__ import annotations

from study import i18n
from study.report import present as P
from study.report.analysis import Context
from study.report.text.words import _comma, _low, _q, _reason, _semi


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
