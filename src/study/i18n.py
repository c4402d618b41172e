"""Languages of the report: the message catalogue, the active language, and locale formatting.

English is the source language: every user-visible text of the toolkit is written in English in
the code, and that English text is the *msgid* of a gettext catalogue. Other languages live in one
``.po`` file each, ``study/locale/<locale>/LC_MESSAGES/study.po`` (zh_CN today), which translators
edit with any PO editor (Poedit, Lokalize, Weblate). The catalogue is read with Babel's
``babel.messages.pofile`` when first needed — no compiled ``.mo`` file, so there is no build step,
nothing binary in the repository and nothing that can go stale; reading it takes a few
milliseconds per process.

How code marks text (the extractor, :mod:`study.i18n_extract`, finds these calls; their first
text argument must be one string literal):

* ``present.md(template, *values)`` — a Markdown sentence; the template is the msgid;
  ``present.pmd(context, template, *values)`` with a msgctxt; ``present.nmd(singular, plural, n,
  *values)`` where English needs a plural;
* ``_(text)``, ``pgettext(context, text)``, ``ngettext(singular, plural, n)`` — plain text
  (headings, captions, column headers, axis labels);
* ``N_(text)`` / ``NP_(context, text)`` — mark a text (or a ``{}`` template) that is translated
  later, where it is shown, with :func:`tr` (e.g. verdicts and reasons that the analysis layer
  stores in its results in English, so that one analysis serves every language).

In English every lookup returns its msgid unchanged, so the English report does not depend on the
catalogue. In another language a message without a translation falls back to the English text and
is recorded in :data:`MISSING` (with ``STUDY_I18N_STRICT=1`` it raises instead: the tests run
strict, so a missing translation is a test failure, never a silent English sentence).

Numbers and dates: the digits of a number are computed once, in :mod:`study.report.present`, the same for
every language (so a Chinese figure can never differ from the English one by rounding); the
symbols around them — decimal and group separators, the percent pattern — and the names of dates
and quarters come from Babel's CLDR data for the locale (:func:`localize_number`,
:func:`percent`, :func:`date`, :func:`quarter`). The English report keeps its house style
("91.9 %", "01 April 2025", "2025Q2").
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import os
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Languages the report can be written in (``--lang``), and their CLDR / gettext locales.
LANGUAGES = ("en", "zh")
LOCALES = {"en": "en", "zh": "zh_CN"}
#: The BCP 47 tag written into the HTML (``<html lang>``).
HTML_LANG = {"en": "en", "zh": "zh-Hans"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "study"
STRICT_ENV = "STUDY_I18N_STRICT"

_STATE: dict[str, Any] = {"lang": "en"}
#: (context, msgid) looked up in a language without a translation, in this process.
MISSING: set[tuple[str | None, str]] = set()


class MissingTranslation(KeyError):
    """A message has no translation in the active language (raised only in strict mode)."""


# ---------------------------------------------------------------------------------------------
# The active language


def check_language(lang: str) -> str:
    lang = str(lang or "en").strip().lower().replace("_", "-")
    lang = {"zh-cn": "zh", "zh-hans": "zh", "en-us": "en", "en-gb": "en"}.get(lang, lang)
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}; available: {', '.join(LANGUAGES)}")
    return lang


def set_language(lang: str) -> str:
    """Make ``lang`` (``en`` or ``zh``) the language of every text produced from now on; returns it."""
    _STATE["lang"] = check_language(lang)
    return _STATE["lang"]


def language() -> str:
    """The active language (``en`` unless :func:`set_language` chose another)."""
    return _STATE["lang"]


@contextlib.contextmanager
def use(lang: str) -> Iterator[str]:
    """``with i18n.use("en"): ...`` — a language for a block, restored afterwards."""
    before = _STATE["lang"]
    set_language(lang)
    try:
        yield _STATE["lang"]
    finally:
        _STATE["lang"] = before


def locale(lang: str | None = None) -> str:
    return LOCALES[lang or language()]


# ---------------------------------------------------------------------------------------------
# The catalogue


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[tuple[str | None, str], str | tuple[str, ...]]:
    """(msgctxt, msgid) -> translation of ``lang``'s .po file; untranslated and fuzzy entries are left out."""
    from babel.messages.pofile import read_po

    if lang == "en":
        return {}
    path = po_path(lang)
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        cat = read_po(fh, locale=LOCALES[lang], domain=DOMAIN)
    out: dict[tuple[str | None, str], str | tuple[str, ...]] = {}
    for m in cat:
        if not m.id or m.fuzzy:
            continue
        msgid = m.id[0] if isinstance(m.id, (tuple, list)) else m.id
        s = m.string
        if isinstance(s, (tuple, list)):
            if not all(s):
                continue
            out[(m.context, msgid)] = tuple(s)
        elif s:
            out[(m.context, msgid)] = s
    return out


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


def _missing(context: str | None, msgid: str) -> None:
    MISSING.add((context, msgid))
    if _strict():
        where = f" (context {context!r})" if context else ""
        raise MissingTranslation(f"no {language()} translation of {msgid!r}{where} in {po_path(language())}; "
                                 "add it (see notes on i18n in the README)")
    _report_missing(context, msgid)


def _report_missing(context: str | None, msgid: str) -> None:
    """Inside a notebook kernel, leave an invisible mark in the output that study.report.render collects."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    if get_ipython() is None:
        return
    from IPython.display import HTML, display

    display(HTML(""), metadata={"study": {"kind": "i18n-missing", "context": context or "", "msgid": msgid}})


def _lookup(context: str | None, msgid: str) -> str | tuple[str, ...] | None:
    lang = language()
    if lang == "en":
        return None
    found = catalogue(lang).get((context, msgid))
    if found is None and needs_translation(msgid):
        _missing(context, msgid)
    return found


def needs_translation(msgid: str) -> bool:
    """Whether a message has words to translate (a template of only fields and punctuation, "{} {}", has none)."""
    return any(c.isalpha() for c in re.sub(r"\{[^{}]*\}", "", msgid))


def gettext(msgid: str) -> str:
    """The translation of ``msgid`` in the active language (the msgid itself in English)."""
    found = _lookup(None, msgid)
    return msgid if found is None else (found if isinstance(found, str) else found[0])


def pgettext(context: str, msgid: str) -> str:
    """Like :func:`gettext`, for a message with a context (msgctxt): the same English word in two roles."""
    found = _lookup(context, msgid)
    return msgid if found is None else (found if isinstance(found, str) else found[0])


def _plural_index(lang: str, n: int) -> int:
    from babel import Locale

    if lang == "en":
        return 0 if n == 1 else 1
    rule = Locale.parse(LOCALES[lang]).plural_form
    # gettext's order of plural forms follows CLDR's categories; Chinese has one form.
    cats = [c for c in ("zero", "one", "two", "few", "many", "other") if c in rule.tags or c == "other"]
    return cats.index(rule(n)) if rule(n) in cats else len(cats) - 1


def npgettext(context: str | None, singular: str, plural: str, n: int) -> str:
    """The singular or plural form for the count ``n`` (English), or the translation's form."""
    lang = language()
    if lang == "en":
        return singular if int(n) == 1 else plural
    found = catalogue(lang).get((context, singular))
    if found is None:
        _missing(context, singular)
        return singular if int(n) == 1 else plural
    forms = (found,) if isinstance(found, str) else found
    return forms[min(_plural_index(lang, int(n)), len(forms) - 1)]


def ngettext(singular: str, plural: str, n: int) -> str:
    return npgettext(None, singular, plural, n)


_ = gettext


def N_(msgid: str) -> str:
    """Mark a text for the catalogue without translating it now (it is translated where shown, by :func:`tr`)."""
    return msgid


def NP_(context: str, msgid: str) -> str:
    """:func:`N_` with a context."""
    return msgid


# ---------------------------------------------------------------------------------------------
# Texts stored in English by the analysis layer, translated where shown


@functools.lru_cache(maxsize=None)
def _patterns(lang: str, context: str | None) -> list[tuple[re.Pattern, list[str], str, str]]:
    """Templates with ``{}`` fields of ``context``, as regular expressions (longest literal first)."""
    out = []
    for (ctx, msgid), msgstr in catalogue(lang).items():
        if ctx != context or not isinstance(msgstr, str) or "{" not in msgid:
            continue
        parts, names, lit_len = [], [], 0
        try:
            parsed = list(string.Formatter().parse(msgid))
        except ValueError:
            continue
        for literal, field, _spec, _conv in parsed:
            parts.append(re.escape(literal))
            lit_len += len(literal)
            if field is not None:
                parts.append("(.+?)")
                names.append(field)
        out.append((re.compile("".join(parts) + r"\Z", re.S), names, msgid, msgstr, lit_len))
    out.sort(key=lambda x: -x[4])
    return [x[:4] for x in out]


def tr(text: Any, context: str | None = None) -> str:
    """Translate a text that was marked with :func:`N_`/:func:`NP_` and is shown now, e.g. a verdict
    ("improved") or a reason the analysis stored in English ("starts after 2025Q2").

    An exact message is looked up first; else the ``{}`` templates of the same context are matched
    against the text and the translation is filled with the values found (each translated the same
    way when it is itself a marked text, so reasons can nest). English returns the text unchanged.
    A text that matches nothing counts as a missing translation.
    """
    if text is None:
        return ""
    text = str(text)
    lang = language()
    if lang == "en" or not text:
        return text
    cat = catalogue(lang)
    found = cat.get((context, text))
    if isinstance(found, str):
        return found
    if _QUARTER.match(text) or _ISO_DATE.match(text) or _SPAN.match(text):
        return _value(text, context)
    for rx, names, _msgid, msgstr in _patterns(lang, context):
        m = rx.match(text)
        if m is None:
            continue
        values = [_value(v, context) for v in m.groups()]
        positional = [v for n, v in zip(names, values) if n == "" or n.isdigit()]
        named = {n: v for n, v in zip(names, values) if n and not n.isdigit()}
        return msgstr.format(*positional, **named)
    _missing(context, text)
    return text


def tr_known(text: Any, context: str | None = None, patterns: bool | None = None) -> str:
    """Like :func:`tr` for text that may or may not be a marked message (a table cell: a verdict, or a
    branch name from the data): translated when the catalogue knows it, else unchanged, never missing.

    ``{}`` templates are matched only where ``patterns`` (default: not for table cells, whose text
    from the data could match a template by accident)."""
    if text is None or language() == "en":
        return "" if text is None else str(text)
    text = str(text)
    found = catalogue(language()).get((context, text))
    if isinstance(found, str):
        return found
    if patterns is None:
        patterns = context != "cell"
    if not patterns:
        return text
    for rx, names, _msgid, msgstr in _patterns(language(), context):
        m = rx.match(text)
        if m is not None:
            values = [_value(v, context) for v in m.groups()]
            if all(n == "" or n.isdigit() for n in names):
                return msgstr.format(*values)
            return msgstr.format(**dict(zip(names, values)))
    return text


_QUARTER = re.compile(r"(\d{4})Q([1-4])\Z")
_EN_DATE = re.compile(r"\d{1,2} [A-Z][a-z]+ \d{4}\Z")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_PERCENT = re.compile(r"([−+-]?\d+(?:\.\d+)?) %\Z")
_SPAN = re.compile(r"(\d{4}-\d{2}-\d{2}) – (\d{4}-\d{2}-\d{2})\Z")


def _value(v: str, context: str | None) -> str:
    """A value found inside a stored English text, in the active language: a quarter, a date, a marked text."""
    if _QUARTER.match(v):   # a column header keeps the id (2025Q1数值), as the tables' quarter columns do
        return v if context == "column" else quarter(v)
    if _MONTH.match(v):
        return month(v)
    pct = _PERCENT.match(v)
    if pct:
        return percent(pct.group(1))
    span = _SPAN.match(v)
    if span:
        return pgettext("period", "{} to {}").format(date(span.group(1)), date(span.group(2)))
    if _EN_DATE.match(v) or _ISO_DATE.match(v):
        try:
            d = _dt.datetime.strptime(v, "%d %B %Y" if _EN_DATE.match(v) else "%Y-%m-%d").date()
            return date(d)
        except ValueError:
            return v
    cat = catalogue(language())
    if (context, v) in cat or any(rx.match(v) for rx, *_ in _patterns(language(), context)):
        return tr(v, context)
    return v


def pick(obj: Any, field: str) -> str:
    """A study.yml text in the active language: ``pick(measure, "name")`` gives ``name_zh`` in Chinese.

    When the translation is missing, the English text is shown with a visible mark (validate warns)."""
    en = str(getattr(obj, field, "") or "")
    if language() == "en":
        return en
    other = str(getattr(obj, f"{field}_{language()}", "") or "")
    return other or untranslated(en)


def untranslated(text: str) -> str:
    """The English text of a study.yml name that has no translation, marked as such."""
    return pgettext("fallback", "{} (English)").format(text) if text else text


# ---------------------------------------------------------------------------------------------
# Numbers, dates and quarters (Babel's CLDR data)


@functools.lru_cache(maxsize=None)
def _symbols(lang: str) -> tuple[str, str, str, str]:
    """(decimal, group, percent prefix, percent suffix) of the locale."""
    from babel import Locale
    from babel.numbers import get_decimal_symbol, get_group_symbol

    loc = Locale.parse(LOCALES[lang])
    pattern = loc.percent_formats[None].pattern.split(";")[0]
    prefix, _, rest = pattern.partition("#")
    suffix = rest.lstrip("#,0.")
    return get_decimal_symbol(loc), get_group_symbol(loc), prefix, suffix.replace("%", "%")


def localize_number(text: str) -> str:
    """A number written by :mod:`study.report.present` ("12,345.7") with the active locale's separators."""
    lang = language()
    if lang == "en":
        return text
    dec, grp, _, _ = _symbols(lang)
    if (dec, grp) == (".", ","):
        return text
    return text.replace(",", "\0").replace(".", dec).replace("\0", grp)


def percent(number_text: str) -> str:
    """A percentage from its number ("86.9"): the locale's pattern in Chinese ("86.9%"); the English
    report's house style "86.9 %"."""
    lang = language()
    if lang == "en":
        return f"{number_text} %"
    _, _, prefix, suffix = _symbols(lang)
    return f"{prefix}{localize_number(number_text)}{suffix}"


def date(d: Any, en_format: str = "%d %B %Y") -> str:
    """A date for prose: CLDR's long date in Chinese ("2025年4月1日"); English ``en_format`` ("01 April 2025")."""
    import pandas as pd

    d = pd.Timestamp(d).date()
    if language() == "en":
        return d.strftime(en_format)
    from babel.dates import format_date

    return format_date(d, "long", locale=locale())


def quarter(q: Any) -> str:
    """A quarter for prose and titles: "2025年第二季度" in Chinese (CLDR's wide quarter name), "2025Q2" in English."""
    if q is None:
        return ""
    q = str(q)
    m = _QUARTER.match(q)
    if language() == "en" or m is None:
        return q
    from babel.dates import format_date, format_skeleton

    first = _dt.date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)
    return format_skeleton("y", first, locale=locale()) + format_date(first, "QQQQ", locale=locale())


_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")


def month(ym: Any, *, year: bool = True) -> str:
    """A calendar month "2024-11" for prose, tables and axes: "2024年11月" in Chinese ("11月" with ``year=False``,
    for axis ticks inside a year); English keeps the ISO form."""
    text = str(ym)
    m = _MONTH.match(text)
    if language() == "en" or m is None:
        return text
    return f"{int(m.group(1))}年{int(m.group(2))}月" if year else f"{int(m.group(2))}月"


def month_ticks(months: list[str]) -> list[str]:
    """Axis ticks of consecutive months: Chinese writes the year at the first tick and where it changes
    ("2024年11月、12月、2025年1月"); English keeps the ISO months."""
    out, last = [], None
    for ym in months:
        m = _MONTH.match(str(ym))
        out.append(month(ym, year=m is None or m.group(1) != last))
        last = m.group(1) if m else None
    return out


def cite(reference: str) -> str:
    """A citation in the active language: "Nunnally 1978; Hair et al. 2019; Fornell & Larcker 1981" in English,
    "Nunnally，1978；Hair等，2019；Fornell和Larcker，1981" in Chinese (authors keep their names; "et al." is 等)."""
    text = str(reference)
    if language() == "en" or not text:
        return text
    parts = []
    for ref in re.split(r";\s*", text):
        m = re.match(r"(.*?),?\s+(\d{4}[a-z]?)$", ref.strip())
        authors, year = (m.group(1), m.group(2)) if m else (ref.strip(), "")
        authors = re.sub(r"\s+et al\.?", "等", authors)
        authors = re.sub(r"\s*(?:&|\band\b)\s*", "和", authors).replace(", ", "、")
        parts.append(f"{authors}，{year}" if year else authors)
    return "；".join(parts)


def comma_join(items) -> str:
    """Items of an enumeration: "a, b, c" in English, "甲、乙、丙" (enumeration comma) in Chinese."""
    return ("、" if language() == "zh" else ", ").join(str(x) for x in items)


def join_list(items: list[str]) -> str:
    """Items joined as the language lists them: "a, b and c" (English), "甲、乙和丙" (Chinese, CLDR)."""
    items = [str(x) for x in items]
    if language() == "en":
        if len(items) <= 1:
            return "".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]
    from babel.lists import format_list

    return format_list(items, locale=locale()) if items else ""
