"""Shared helpers of the report's text modules: labels, numbers, quarters and lists in prose, in the active language."""

from __future__ import annotations

from study import i18n
from study import metrics as mx
from study.i18n import _
from study.report import present as P
from study.report import tables
from study.report.analysis import Context


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
    return ((i18n.pgettext("estimate", "DiD"), "Holm") if design == "difference-in-differences"
            else (i18n.pgettext("estimate", "change"), "Holm"))
