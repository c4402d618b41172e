"""Presentation helpers for the chapter notebooks: numbers, tests, tables, figures, formulas, prose.

A chapter notebook calls, in this order::

    present.chapter(chapter, "Current state")          # <h1>, resets the numbering of that chapter
    present.heading("Reliability of the questionnaire")   # <h2> "2.1 ..."
    present.table(df, "Cronbach's alpha per dimension, 2025Q2", formats={"alpha": 3})   # "Table 2.1"
    present.figure(fig, "Dimension scores with 95 % CIs, all branches, 2025Q2")           # "Figure 2.1"
    present.equation(r"SQI = \\sum_i W_i \\, \\frac{X_i - X_{min}}{X_{max} - X_{min}}")   # "(2.1)"
    present.prose(f"Satisfaction rose ({present.fmt_test(row)}).")

Each call displays clean HTML in the executed notebook (no DataFrame repr, no index, no code) and
returns a :class:`Ref` - the label, e.g. ``"Table 2.1"`` - for cross-references in prose; a Ref
displays nothing, so a call may end a cell. The chapter number is a parameter of the notebook, so
numbers read "Table 2.3" in the notebook in JupyterLab and in the rendered report alike. Chapters
named by a letter are appendices ("Appendix A", "Table A.1").

Formatting follows the APA Publication Manual (7th ed., §6.36-6.46): ``t(37.9) = 2.13, p = .038``;
no leading zero for values that cannot exceed 1 (p, r, proportions); exact p to three decimals,
``p < .001`` below that. Negative numbers use the true minus sign (U+2212); percentages and CIs
are written "91.88 %" and "95 % CI [0.10, 1.12]".

Formulas are rendered offline to SVG by matplotlib's mathtext (a TeX subset: fractions, sums,
sub/superscripts, Greek, accents; no environments such as ``aligned``), so neither the HTML nor
the PDF needs MathJax or a network connection.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from study import i18n
from study.i18n import pgettext
from study.report import typeset

MINUS = "\u2212"
DASH = "\u2014"  # shown for a missing value

# ---------------------------------------------------------------------------------------------
# Numbers


def _missing(x: Any) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(isinstance(x, (float, np.floating)) and math.isnan(x))
    except TypeError:
        return False


def _minus(s: str) -> str:
    return s.replace("-", MINUS) if s.startswith("-") else s


def fmt_num(x: Any, digits: int | None = None, *, sign: bool = False, leading_zero: bool = True) -> str:
    """A number for reading: thousands separators, fixed decimals, true minus sign.

    ``digits=None``: integers (and integral floats) without decimals, other floats with 2.
    ``sign=True`` writes "+" for positive values (changes). ``leading_zero=False`` gives ".61"
    (APA, for quantities that cannot exceed 1). Missing values give an em dash.

    >>> fmt_num(12345.678, 1), fmt_num(-0.5), fmt_num(3, sign=True)
    ('12,345.7', '−0.50', '+3')
    """
    if _missing(x):
        return DASH
    if isinstance(x, (bool, np.bool_)):
        return _yes_no(x)
    if digits is None:
        digits = 0 if isinstance(x, (numbers.Integral, np.integer)) or float(x).is_integer() and abs(x) >= 100 else 2
    v = float(x)
    if math.isinf(v):
        return ("" if v > 0 else MINUS) + "∞"
    s = f"{v:+,.{digits}f}" if sign else f"{v:,.{digits}f}"
    if float(s.replace(",", "")) == 0:  # no "-0.00" or "+0.00"
        s = f"{0:.{digits}f}"
    if not leading_zero and i18n.language() == "en":  # Chinese journals print the leading zero
        s = re.sub(r"^([+-]?)0\.", r"\1.", s)
    return _minus(i18n.localize_number(s))


def _yes_no(x: Any) -> str:
    return pgettext("boolean", "yes") if x else pgettext("boolean", "no")


def fmt_int(x: Any) -> str:
    """An integer count with thousands separators ("12,345")."""
    return DASH if _missing(x) else fmt_num(round(float(x)), 0)


def fmt_pct(x: Any, digits: int = 1, *, sign: bool = False, proportion: bool = True) -> str:
    """A share as a percentage with a space before the sign: ``fmt_pct(735 / 800, 2) == "91.88 %"``.

    ``proportion=True`` (default): ``x`` is a proportion (0-1); ``False``: already in percent.
    ``sign=True`` gives "+3.0 %" (use :func:`fmt_pp` for differences of percentages).
    """
    if _missing(x):
        return DASH
    v = float(x) * (100 if proportion else 1)
    return i18n.percent(fmt_num(v, digits, sign=sign))


def fmt_pp(x: Any, digits: int = 1, *, proportion: bool = True) -> str:
    """A difference of two percentages in percentage points, signed: "+3.2 pp"."""
    if _missing(x):
        return DASH
    v = float(x) * (100 if proportion else 1)
    return pgettext("unit", "{} pp").format(fmt_num(v, digits, sign=True))


def fmt_p(p: Any, *, digits: int = 3, prefix: bool = True) -> str:
    """APA p value: ``"p = .038"``, ``"p < .001"``, ``"p > .999"``; ``prefix=False`` gives ``".038"``."""
    if _missing(p):
        return pgettext("statistic", "p = n/a") if prefix else DASH
    p = float(p)
    if not 0 <= p <= 1:
        raise ValueError(f"a p value must lie in [0, 1], got {p}")
    floor = 10 ** -digits
    if p < floor:
        body = "< " + fmt_num(floor, digits, leading_zero=False)
    elif p > 1 - floor:
        body = "> " + fmt_num(1 - floor, digits, leading_zero=False)
    else:
        body = "= " + fmt_num(p, digits, leading_zero=False)
    if i18n.language() != "en":  # "< 0.001" stays on one line in narrow Chinese table columns (no-break space)
        body = re.sub(r"^([<>]) ", "\\1\u00a0", body)
    return f"p {body}" if prefix else body.removeprefix("= ")


def fmt_ci(lo: Any, hi: Any, digits: int = 2, *, level: float = 95, leading_zero: bool = True,
           label: bool = True) -> str:
    """A confidence interval: ``"95 % CI [0.10, 1.12]"`` (``label=False``: ``"[0.10, 1.12]"``)."""
    body = f"[{fmt_num(lo, digits, leading_zero=leading_zero)}, {fmt_num(hi, digits, leading_zero=leading_zero)}]"
    lv = fmt_num(level, 0 if float(level).is_integer() else 1)
    return pgettext("statistic", "{level} CI {interval}").format(level=i18n.percent(lv), interval=body) if label else body


def fmt_df(df: Any) -> str:
    """Degrees of freedom: integers as such ("38"), Welch-type fractional df to one decimal ("37.9")."""
    if isinstance(df, (tuple, list)):
        return ", ".join(fmt_df(d) for d in df)
    v = float(df)
    return fmt_num(v, 0) if abs(v - round(v)) < 1e-9 else fmt_num(v, 1)


# Test statistics: key in the row -> printed symbol.
_STATS = {"t": "t", "T": "t", "F": "F", "z": "z", "Z": "z", "U": "U", "W": "W", "H": "H", "chi2": "χ²", "X2": "χ²",
          "Q": "Q", "r": "r", "rho": "ρ", "tau": "τ"}
# Effect sizes: key -> (symbol, can exceed 1 in absolute value).
_EFFECTS = {"g": ("g", True), "hedges_g": ("g", True), "hedges": ("g", True), "d": ("d", True),
            "cohen_d": ("d", True), "cohen-d": ("d", True), "hedges-g": ("g", True), "cohen": ("d", True), "dz": ("d_z", True),
            "r_effect": ("r", False),
            "r_rb": ("r_rb", False), "rbc": ("r_rb", False), "eta2": ("η²", False), "eta_sq": ("η²", False),
            "partial_eta2": ("η²p", False), "np2": ("η²p", False), "omega2": ("ω²", False), "V": ("V", False),
            "cramers_v": ("V", False), "R2": ("R²", False), "epsilon2": ("ε²", False), "delta": ("δ", False),
            "cliffs_delta": ("δ", False), "or": ("OR", True), "odds_ratio": ("OR", True)}
_P_KEYS = ("p", "p_value", "pvalue", "p-val", "pval")
_CI_KEYS = (("ci_low", "ci_high"), ("ci_lower", "ci_upper"), ("ci_lo", "ci_hi"), ("lower", "upper"), ("lo", "hi"))


def _get(row: Mapping, key: str, default=None):
    try:
        v = row[key]
    except (KeyError, IndexError, TypeError):
        return default
    return default if v is None else v


def fmt_test(row: Mapping | pd.Series, *, stat: str | None = None, p: str | None = None, effect: str | None = None,
             ci: tuple[str, str] | None = None, digits: int = 2, level: float | None = None,
             md: bool = False) -> str:
    """One test in APA style: ``"t(37.9) = 2.13, p = .038, g = 0.61, 95 % CI [0.10, 1.12]"``.

    ``row`` is a mapping (a dict or a result row). Recognised keys (first found wins; override
    with the keyword arguments):

    * statistic: ``statistic`` with ``stat_name``/``test_stat`` naming the symbol, or a key named by
      the symbol itself: ``t, F, z, U, W, H, chi2, Q, r``;
    * degrees of freedom: ``df`` (a number or a pair), or ``df1`` and ``df2``; ``n`` is added to χ²
      as "χ²(3, N = 735)";
    * p: ``p`` (or ``p_value, pvalue, p-val, pval``); pass ``p="p_adj"`` for an adjusted p value;
    * effect size: ``g, d, dz, r_rb, eta2, partial_eta2, omega2, V, cramers_v, R2, delta, OR``
      (also pingouin's ``cohen-d``/``hedges-g``; or ``effect``/``effect_size`` with ``effect_name``);
    * a CI ``ci_low``/``ci_high`` (or ``ci_lower/ci_upper``, ``lo/hi``, or ``ci`` as a pair),
      level ``ci_level`` (default 95), printed last - after the effect size, as in APA, so give
      the CI of the effect size when there is one (or pass ``ci=(lo_key, hi_key)``).

    Parts that are absent are left out; a row with nothing recognisable raises ``ValueError``.
    ``md=True`` italicises the symbols in Markdown (``*t*(37.9) = 2.13, *p* = .038``), as APA
    prints them; use it in :func:`prose`. The visible text is the same.
    """
    it = (lambda sym: f"*{sym}*") if md else (lambda sym: sym)
    parts: list[str] = []
    # statistic
    sym = value = None
    if stat is not None:
        sym, value = _STATS.get(stat, stat), _get(row, stat, _get(row, "statistic"))
    else:
        name = _get(row, "stat_name", _get(row, "test_stat"))
        if name is not None and _get(row, "statistic") is not None:
            sym, value = _STATS.get(str(name), str(name)), _get(row, "statistic")
        else:
            for k, s in _STATS.items():
                v = _get(row, k)
                if v is not None and not isinstance(v, str):
                    sym, value = s, v
                    break
    if sym is not None and value is not None and not _missing(value):
        df = _get(row, "df", _get(row, "dof"))
        if df is None and _get(row, "df1") is not None:
            df = (_get(row, "df1"), _get(row, "df2"))
        inside = []
        if df is not None and not _missing(df if not isinstance(df, (tuple, list)) else df[0]):
            inside.append(fmt_df(df))
        if sym == "χ²" and _get(row, "n") is not None:
            inside.append(f"N = {fmt_int(_get(row, 'n'))}")
        bracket = f"({', '.join(inside)})" if inside else ""
        lz = sym not in ("r", "ρ", "τ")
        parts.append(f"{it(sym)}{bracket} = {fmt_num(value, digits, leading_zero=lz)}")
    # p value
    pv = _get(row, p) if p is not None else next((_get(row, k) for k in _P_KEYS if _get(row, k) is not None), None)
    if pv is not None:
        parts.append(it("p") + fmt_p(pv)[1:])
    # effect size
    esym = eval_ = None
    if effect is not None:
        esym, big = _EFFECTS.get(effect, (effect, True))
        eval_ = _get(row, effect)
    elif _get(row, "effect_name") is not None and (_get(row, "effect") is not None or _get(row, "effect_size") is not None):
        esym, big = _EFFECTS.get(str(_get(row, "effect_name")), (str(_get(row, "effect_name")), True))
        eval_ = _get(row, "effect", _get(row, "effect_size"))
    else:
        for k, (s, b) in _EFFECTS.items():
            v = _get(row, k)
            if v is not None and not isinstance(v, str):
                esym, big, eval_ = s, b, v
                break
    big = True if esym is None else big
    if esym is not None and eval_ is not None and not _missing(eval_):
        parts.append(f"{it(esym)} = {fmt_num(eval_, digits, leading_zero=big)}")
    # the CI (of the effect size when there is one) comes last
    lo = hi = None
    if ci is not None:
        lo, hi = _get(row, ci[0]), _get(row, ci[1])
    elif any(_get(row, k) is not None and not isinstance(_get(row, k), str) for k in ("ci", "CI95%")):
        pair = _get(row, "ci", _get(row, "CI95%"))  # a (low, high) pair; pingouin calls it CI95%
        lo, hi = (pair[0], pair[1]) if len(pair) == 2 else (None, None)
    else:
        for a, b in _CI_KEYS:
            if _get(row, a) is not None and _get(row, b) is not None:
                lo, hi = _get(row, a), _get(row, b)
                break
    if lo is not None and not _missing(lo):
        lv = level if level is not None else _get(row, "ci_level", 95)
        lv = lv * 100 if lv < 1 else lv
        parts.append(fmt_ci(lo, hi, digits, level=lv, leading_zero=big))
    if not parts:
        raise ValueError("fmt_test: found no statistic, p value or effect size in the row; keys: "
                         + ", ".join(map(str, getattr(row, "keys", lambda: [])())))
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Numbering: a counter per chapter and kind


class Ref(str):
    """A label such as "Table 2.3", returned by the display helpers. Displays nothing itself, so a
    helper call may end a notebook cell without printing its return value."""

    def _ipython_display_(self) -> None:  # IPython protocol
        return None


_STATE: dict[str, Any] = {"chapter": None, "counts": {}}
_KIND_NAMES = {"table": "Table", "figure": "Figure", "equation": "", "section": ""}


def set_chapter(number: int | str | None) -> None:
    """Set the current chapter (its number, or a letter for an appendix) and restart its numbering."""
    _STATE["chapter"] = None if number is None else str(number)
    for key in [k for k in _STATE["counts"] if k[0] == _STATE["chapter"]]:
        del _STATE["counts"][key]


def current_chapter() -> str | None:
    return _STATE["chapter"]


def is_appendix(number: int | str | None) -> bool:
    return number is not None and str(number).isalpha()


def appendix_label(number: int | str) -> str:
    """ "Appendix A" ("附录A")."""
    return pgettext("label", "Appendix {}").format(number)


def _next(kind: str, number: int | str | None = None) -> str:
    ch = _STATE["chapter"]
    if number is None:
        key = (ch, kind)
        _STATE["counts"][key] = _STATE["counts"].get(key, 0) + 1
        number = _STATE["counts"][key]
    number = str(number)
    if ch is not None and "." not in number:
        number = f"{ch}.{number}"
    return number


def next_label(kind: str = "table") -> str:
    """The label the next table/figure will get ("Table 2.4"), without using it up."""
    ch = _STATE["chapter"]
    n = _STATE["counts"].get((ch, kind), 0) + 1
    num = f"{ch}.{n}" if ch is not None else str(n)
    if kind == "table":
        return pgettext("label", "Table {}").format(num)
    if kind == "figure":
        return pgettext("label", "Figure {}").format(num)
    return f"{_KIND_NAMES[kind]} {num}".strip()


def _anchor(kind: str, number: str) -> str:
    return f"{kind}-" + re.sub(r"[^0-9A-Za-z]+", "-", number).strip("-")


def _display(markup: str, meta: dict) -> None:
    from IPython.display import HTML, display

    display(HTML(markup), metadata={"study": meta})


# ---------------------------------------------------------------------------------------------
# Markdown and formulas


@functools.lru_cache(maxsize=512)
def tex_to_svg(tex: str, fontsize: float = 11.0, fontset: str = "cm") -> tuple[str, float, float, float]:
    """Render a TeX formula (matplotlib mathtext, no $ signs needed) to SVG.

    Returns ``(svg_text, width_pt, height_pt, depth_pt)``; depth is the part below the baseline,
    for aligning inline formulas with the text. Raises ``ValueError`` naming the formula when
    mathtext cannot parse it (mathtext supports a TeX subset; ``\\text{..}`` is mapped to
    ``\\mathrm{..}``).
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    body = tex.strip()
    body = re.sub(r"\\text\{", r"\\mathrm{", body)
    body = body.replace(r"\left.", "").replace(r"\right.", "")
    s = f"${body}$"
    with mpl.rc_context({"mathtext.fontset": fontset, "svg.fonttype": "path", "svg.hashsalt": "study-math"}):
        prop = FontProperties(size=fontsize)
        try:
            width, height, depth, _, _ = MathTextParser("path").parse(s, dpi=72, prop=prop)
        except ValueError as exc:
            first = str(exc).strip().splitlines()
            raise ValueError(f"cannot render the formula {tex!r} with mathtext: {first[-1] if first else exc}") from None
        fig = Figure(figsize=(width / 72.0, height / 72.0))
        # parse_math explicitly: the report theme turns it off for every other text (labels from the data)
        fig.text(0, depth / height, s, fontproperties=prop, color="#1a1a1a", parse_math=True)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", dpi=72, transparent=True, metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    return svg, float(width), float(height), float(depth)


#: Rendered size of formulas relative to the surrounding text (mathtext's Computer Modern looks
#: smaller than the sans-serif text face at the same point size).
INLINE_SCALE = 1.12
DISPLAY_SCALE = 1.3


def math_html(tex: str, *, display: bool = False, fontsize: float = 11.0) -> str:
    """An <img> with the formula as an SVG data URI, sized in em so it scales with the text.

    Display formulas use display-style fractions (``\\frac`` becomes ``\\dfrac``) and are drawn
    larger than inline ones; inline formulas sit on the text baseline.
    """
    if display:
        tex = re.sub(r"\\frac(?![a-zA-Z])", r"\\dfrac", tex)
    svg, w, h, d = tex_to_svg(tex, fontsize)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    alt = html.escape(tex, quote=True)
    k = (DISPLAY_SCALE if display else INLINE_SCALE) / fontsize
    if display:
        return (f'<img class="math math-display" src="{uri}" alt="{alt}" '
                f'style="width:{w * k:.3f}em;height:{h * k:.3f}em">')
    return (f'<img class="math math-inline" src="{uri}" alt="{alt}" '
            f'style="width:{w * k:.3f}em;height:{h * k:.3f}em;vertical-align:{-d * k:.3f}em">')


class Md(str):
    """Markdown written by the toolkit (a template), as opposed to text from study.yml or the data.

    Only an ``Md`` is rendered as Markdown; values put into it with :func:`md` are escaped by
    :func:`lit` first, so a label such as ``**x**``, ``<script>`` or ``$x$`` shows as its literal
    text. ``Md + str`` is not ``Md``: compose with :func:`md` or :func:`join`.
    """

    __slots__ = ()


_MD_SPECIAL = re.compile(r"[\\`*_\[\]{}()#+\-!|~.:$=^]")


def lit(text: Any) -> Md:
    """Text from study.yml or the data, made literal for :func:`markdown_to_html`.

    Whitespace (newlines included) collapses to single spaces, HTML is escaped and every Markdown
    or TeX punctuation mark (``\\ ` * _ [ ] { } ( ) # + - ! | ~ . : $ = ^``) becomes a numeric
    character reference, so nothing in ``text`` can start markup, a list, a link or a formula.
    (Not backslash escapes: ``\\(`` and ``\\[`` open a formula.) An :class:`Md` passes through.
    """
    if isinstance(text, Md):
        return text
    t = " ".join(str(text).split())
    t = html.escape(t, quote=False)
    return Md(_MD_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", t))


def md(template: str, *args: Any, **kwargs: Any) -> Md:
    """Fill a toolkit Markdown template: ``md("Roll out **{}**.", name)``; every value is :func:`lit`-escaped
    (already formatted numbers included, which contain no markup) unless it is an :class:`Md` itself.

    The template is a message of the catalogue (:mod:`study.i18n`): in another language its
    translation is filled instead, with the same values. Write it as one string literal."""
    return _fill(i18n.gettext(template), args, kwargs)


def pmd(context: str, template: str, *args: Any, **kwargs: Any) -> Md:
    """:func:`md` for a template that needs a context (msgctxt) in the catalogue."""
    return _fill(i18n.pgettext(context, template), args, kwargs)


def nmd(singular: str, plural: str, n: int, *args: Any, **kwargs: Any) -> Md:
    """:func:`md` with the English singular or plural template chosen by the count ``n``
    (``nmd("{} problem was found", "{} problems were found", k, fmt_int(k))``)."""
    return _fill(i18n.ngettext(singular, plural, n), args, kwargs)


def _fill(template: str, args, kwargs) -> Md:
    return Md(template.format(*(lit(a) for a in args), **{k: lit(v) for k, v in kwargs.items()}))


def join(parts: Sequence[Any], sep: str | None = None) -> Md:
    """Join template pieces and values into one :class:`Md` (values are escaped, ``sep`` is markup).

    The default separator joins sentences as the language does: a space in English, nothing in
    Chinese (whose full stop "。" needs no space after it)."""
    if sep is None:
        sep = "" if i18n.language() == "zh" else " "
    return Md(sep.join(lit(p) for p in parts))


_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=[^\s$])([^$\n]+?)(?<=[^\s\\])\$(?![\w$])|\\\((.+?)\\\)")


def _extract_math(text: str) -> tuple[str, dict[str, str]]:
    """Replace TeX math outside code by alphanumeric placeholders; return text and placeholder -> HTML."""
    out, repl = [], {}
    for i, part in enumerate(_CODE.split(text)):
        if i % 2:  # code
            out.append(part)
            continue

        def sub_display(m):
            key = f"MATHBLOCK{len(repl)}X"
            repl[key] = f'<div class="equation">{math_html(m.group(1) or m.group(2), display=True)}</div>'
            return f"\n\n{key}\n\n"

        def sub_inline(m):
            key = f"MATHINLINE{len(repl)}X"
            repl[key] = math_html(m.group(1) or m.group(2))
            return key

        part = _DISPLAY_MATH.sub(sub_display, part)
        part = _INLINE_MATH.sub(sub_inline, part)
        out.append(part)
    return "".join(out), repl


@functools.lru_cache(maxsize=1)
def _markdown():
    import mistune
    from mistune.renderers.html import HTMLRenderer
    from mistune.util import escape as escape_text

    class SafeRenderer(HTMLRenderer):
        """Markdown without raw HTML or references out of the document.

        Raw HTML (inline and block, comments included) is shown as its text; a link whose target
        is not an in-document ``#anchor`` keeps only its text; an image keeps only its alt text
        (figures and formulas are embedded by :func:`figure` and :func:`math_html`, never linked).
        Entities in the text (from :func:`lit`) are kept, so escaped values are not escaped twice.
        """

        def inline_html(self, html_text: str) -> str:
            return escape_text(html_text)

        def block_html(self, html_text: str) -> str:
            return "<p>" + escape_text(html_text.strip()) + "</p>\n"

        def link(self, text: str, url: str, title: str | None = None) -> str:
            if re.fullmatch(r"#[A-Za-z][\w.:-]*", url or ""):
                return super().link(text, url)
            return text

        def image(self, text: str, url: str, title: str | None = None) -> str:
            return text

    return mistune.create_markdown(renderer=SafeRenderer(escape=False),
                                   plugins=["table", "strikethrough", "footnotes"])


def markdown_to_html(text: str, *, inline: bool = False) -> str:
    """Markdown (with $inline$ and $$display$$ TeX) to HTML; formulas become SVG images.

    For the toolkit's own Markdown (an :class:`Md`, a Markdown cell of a chapter notebook): raw
    HTML is escaped, links leave the document only as text (see ``_markdown``). Text from
    study.yml or the data goes through :func:`text_html` instead. ``inline=True`` drops the
    enclosing paragraph (for captions and table notes).
    """
    body, repl = _extract_math(text)
    out = _markdown()(body)
    for key, val in repl.items():
        if key.startswith("MATHBLOCK"):
            out = out.replace(f"<p>{key}</p>", val)
        out = out.replace(key, val)
    out = out.strip()
    if inline and out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


def text_html(text: Any, *, inline: bool = True, markdown: bool = False) -> str:
    """The one place where text becomes HTML.

    An :class:`Md` (Markdown written by the toolkit, values inserted with :func:`md`) is rendered
    as Markdown with its $TeX$ formulas (:func:`markdown_to_html`); anything else - a label from
    study.yml, a bank name from the data, a column header - is literal text: HTML-escaped, no
    Markdown, no formulas, so ``**x**``, ``$x$`` or ``<script>`` show as typed.

    ``inline=False`` gives block HTML (paragraphs). ``markdown=True`` renders a plain ``str`` as
    Markdown too - transitional, for prose that :mod:`study.report.text` still returns as ``str``;
    raw HTML in it is escaped and external links dropped all the same.
    """
    if text is None:
        return ""
    if isinstance(text, Md) or markdown:
        return markdown_to_html(str(text), inline=inline)
    if inline:
        return html.escape(str(text), quote=True)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", str(text)) if p.strip()]
    return "\n".join(f"<p>{html.escape(p, quote=True)}</p>" for p in paragraphs)


def prose(text: Md | str, *, markdown: bool = False) -> None:
    """Display generated text as a paragraph block.

    An :class:`Md` is Markdown (with $TeX$ formulas); a plain ``str`` is literal text, unless
    ``markdown=True`` (transitional: for :mod:`study.report.text` functions that still return
    Markdown as ``str``; see :func:`text_html`).
    """
    _display(f'<div class="prose">\n{text_html(text, inline=False, markdown=markdown)}\n</div>', {"kind": "prose"})


def callout(text: Md | str, kind: str = "note", title: Md | str | None = None, *, markdown: bool = False) -> None:
    """A highlighted box: ``kind`` one of note, good, warning (e.g. a key finding or a data caveat).

    ``text`` and ``title`` as in :func:`prose` (an :class:`Md` is Markdown, a ``str`` literal).
    """
    if kind not in ("note", "good", "warning"):
        raise ValueError("callout kind must be 'note', 'good' or 'warning'")
    head = f'<p class="callout-title">{text_html(title)}</p>' if title else ""
    _display(f'<div class="callout callout-{kind}">{head}{text_html(text, inline=False, markdown=markdown)}</div>',
             {"kind": "callout"})


# ---------------------------------------------------------------------------------------------
# Headings


def chapter(number: int | str, title: Md | str, *, display: bool = True) -> Ref:
    """Start a chapter: set its number (a letter for an appendix), reset its numbering, show its <h1>."""
    set_chapter(number)
    label = appendix_label(number) if is_appendix(number) else f"{number}"
    if display:
        _display(f'<h1 class="chapter-title" id="{_anchor("chapter", str(number))}" data-chapter="{html.escape(str(number))}">'
                 f'<span class="number">{html.escape(label)}</span>{_gap()}{text_html(title)}</h1>',
                 {"kind": "chapter", "number": str(number), "title": str(title)})
    return Ref(label)


def _gap() -> str:
    """Between a number or label ("2.1", "Table 2.1") and its title: a space in English; none in Chinese, where the
    label's margin (report.css) sets the gap and no space is typed between a digit and a Han character."""
    return "" if i18n.language() == "zh" else " "


def heading(title: Md | str, level: int = 2, *, numbered: bool = True) -> Ref:
    """A section (level 2, "2.1") or subsection (level 3, "2.1.1") heading of the current chapter."""
    if level not in (2, 3, 4):
        raise ValueError("heading level must be 2, 3 or 4 (level 1 is the chapter: use present.chapter)")
    ch = _STATE["chapter"]
    counts = _STATE["counts"]
    number = ""
    if numbered:
        path = []
        for lv in range(2, level + 1):
            key = (ch, f"h{lv}", tuple(path))
            if lv == level:
                counts[key] = counts.get(key, 0) + 1
            path.append(counts.get(key, 0))
        # a new section restarts the numbering of the levels below it (their keys include the path)
        number = ".".join(([ch] if ch is not None else []) + [str(n) for n in path])
    anchor = _anchor("section", number) if number else "section-" + re.sub(r"[^0-9A-Za-z]+", "-", str(title).lower()).strip("-")
    num_html = f'<span class="number">{number}</span>{_gap()}' if number else ""
    _display(f'<h{level} id="{anchor}">{num_html}{text_html(title)}</h{level}>',
             {"kind": "heading", "level": level, "number": number, "title": str(title)})
    return Ref(number or title)


# ---------------------------------------------------------------------------------------------
# Tables

Formatter = Callable[[Any], str] | str | int
#: Tables with more rows than this may break across pages between rows (header repeated, caption and header kept with
#: the first rows); shorter ones never do. A longer table that did not fit moved whole to the next page and could
#: leave a chapter's first page mostly empty.
LONG_TABLE_ROWS = 8
#: Characters of a first-column cell short enough to be kept on one line in Chinese (eight CJK characters at the
#: tables' 8.6 pt take ~1 inch; a longer label may wrap so that wide tables fit the page).
_SHORT_LABEL = 8
#: A long unbroken token (a hash, a path): set in monospace and broken anywhere. Chinese text has no spaces but is no
#: token (it breaks between characters by itself).
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff]")
_LONG_TOKEN = re.compile(r"[^\s<>\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]{28,}")
_NUMLIKE = re.compile(r"^[\[(]?\s?[−+\-±<>≤≥~≈]?\s?\.?\d")
_DATELIKE = re.compile(r"^\d{4}-\d{2}(-\d{2})?")


def _formatter(spec: Formatter | None, series: pd.Series) -> Callable[[Any], str]:
    if callable(spec):
        return lambda x: DASH if _missing(x) else _keep_md(spec(x))
    if isinstance(spec, int) and not isinstance(spec, bool):
        return lambda x: fmt_num(x, spec)
    if isinstance(spec, str):
        if spec == "p":
            return lambda x: fmt_p(x, prefix=False)
        if spec.startswith("pct"):
            d = int(spec.split(":")[1]) if ":" in spec else 1
            return lambda x: fmt_pct(x, d)
        if spec.startswith("pp"):
            d = int(spec.split(":")[1]) if ":" in spec else 1
            return lambda x: fmt_pp(x, d)
        if spec.startswith("num"):
            d = int(spec.split(":")[1]) if ":" in spec else None
            return lambda x: fmt_num(x, d)
        if spec.startswith("signed"):
            d = int(spec.split(":")[1]) if ":" in spec else 2
            return lambda x: fmt_num(x, d, sign=True)
        if spec == "int":
            return fmt_int
        if "{" in spec:
            return lambda x: DASH if _missing(x) else _minus(spec.format(x))
        if spec.startswith("%"):  # date format
            return lambda x: DASH if _missing(x) else pd.Timestamp(x).strftime(spec)
        raise ValueError(f"unknown format {spec!r}; use a callable, an int (decimals), 'p', 'pct[:d]', 'pp[:d]', "
                         "'num[:d]', 'signed[:d]', 'int', a '{:..}' format string or a '%Y-%m-%d' date format")
    dt = series.dtype
    if pd.api.types.is_bool_dtype(dt):
        return lambda x: DASH if _missing(x) else _yes_no(x)
    if pd.api.types.is_integer_dtype(dt):
        return fmt_int
    if pd.api.types.is_float_dtype(dt):
        return lambda x: fmt_num(x, 2)
    if pd.api.types.is_datetime64_any_dtype(dt):
        # "2025-04-01" in English tables; 2025年4月1日 in Chinese (no ISO date in the Chinese report)
        return lambda x: DASH if _missing(x) else (pd.Timestamp(x).strftime("%Y-%m-%d") if i18n.language() == "en"
                                                   else i18n.date(x))
    return lambda x: DASH if _missing(x) else (fmt_num(x) if isinstance(x, numbers.Number) and not isinstance(x, bool) else _keep_md(x))


def _header(text: str) -> str:
    """A column header in the active language: the tables build English headers (marked with
    ``NP_("column", ...)``, so the catalogue check sees them), translated here. A header that is no
    message - a bank's name, a quarter, notation such as n, p, g, α - is shown as it is."""
    if i18n.language() == "en" or not text:
        return text
    # a trailing space keeps two columns of one name apart in the frame ("95 % CI" twice): translate the name
    core = text.rstrip(" ")
    return i18n.tr_known(core, "column") + text[len(core):]


def _note_word() -> str:
    """ "Note." before a table's or figure's notes ("注：" in Chinese)."""
    return html.escape(pgettext("table note", "Note."))


def _keep_md(x: Any) -> str:
    """A cell's text: an :class:`Md` stays Markdown, anything else becomes a plain ``str``."""
    return x if isinstance(x, Md) else str(x)


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def keep_together(cell: str) -> str:
    """A number cell that may wrap (wide tables, Chinese) breaks only before its interval (or a bracketed verdict) or after the interval's
    comma: "81.4 % [77.6 %, 84.7 %]" may become "81.4 %" over "[77.6 %, 84.7 %]", never "84.7" over "%]". Every other
    space is made non-breaking."""
    return re.sub(r"(?<!,) (?![\[(])", "\u00a0", cell)


def table_html(df: pd.DataFrame, caption: Md | str, label: str | None = None, notes: str | Sequence[str] | None = None,
               formats: Mapping[str, Formatter] | None = None, *, labels: Mapping[str, str] | None = None,
               index: bool | None = None, escape: bool = True, align: Mapping[str, str] | None = None,
               highlight: Sequence[bool] | pd.Series | None = None, source: str | None = None,
               anchor: str | None = None) -> str:
    """The HTML of a numbered table (see :func:`table`), without displaying it.

    Every text (caption, notes, headers, cells) goes through :func:`text_html`: an :class:`Md`
    is Markdown, anything else literal. ``escape=False`` renders plain-``str`` cells as Markdown
    (transitional; raw HTML is escaped all the same).
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table() needs a DataFrame, got {type(df).__name__}")
    formats = dict(formats or {})
    labels = dict(labels or {})
    align = dict(align or {})
    show_index = index if index is not None else not (
        isinstance(df.index, pd.RangeIndex) and df.index.name is None)
    data = df.reset_index() if show_index else df.reset_index(drop=True)
    cols = list(data.columns)
    multi = isinstance(data.columns, pd.MultiIndex)

    zh = i18n.language() == "zh"

    def col_label(c) -> str:
        if multi:
            c = c[-1]
        shown = labels.get(c, c if isinstance(c, Md) else str(c))
        out = text_html(shown if isinstance(shown, Md) else _header(shown))
        return typeset.words_html(out) if zh else out   # a header wraps between words, not one character per line

    def spec(c):
        return formats.get(c, formats.get(c[-1]) if multi else None)

    fmts = {c: _formatter(spec(c), data[c]) for c in cols}
    numeric = {c: _is_numeric(data[c]) or (isinstance(spec(c), str) and spec(c).startswith(("p", "num", "signed", "int")))
               for c in cols}
    cells = {c: [fmts[c](v) for v in data[c]] for c in cols}
    for c in cols:  # text columns that hold numbers, intervals or ranks ("[0.10, 1.12]", "3 of 4") read as numbers
        shown = [t for t in cells[c] if t != DASH]
        if not numeric[c] and shown and all(len(t) <= 28 and _NUMLIKE.match(t) and not _DATELIKE.match(t) for t in shown):
            numeric[c] = True
    cls = {c: align.get(c, "num" if numeric[c] else "text") for c in cols}
    if align:
        cls = {c: {"right": "num", "left": "text", "center": "center"}.get(cls[c], cls[c]) for c in cols}
    for c in cols:  # dates ("2025-04-01") never break at their hyphens
        shown = [t for t in cells[c] if t != DASH]
        if shown and all(_DATELIKE.match(str(t)) and len(str(t)) <= 10 for t in shown):
            cls[c] += " date"

    klass = "study-table long" if len(data) > LONG_TABLE_ROWS else "study-table"
    out = [f'<div class="{klass}" id="{anchor}">' if anchor else f'<div class="{klass}">']
    out.append('<table class="study">')
    cap = text_html(caption)
    lab = f'<span class="label">{html.escape(label)}</span>{_gap()}' if label else ""
    out.append(f"<caption>{lab}<span class=\"title\">{cap}</span></caption>")
    out.append("<thead>")
    if multi and data.columns.nlevels > 1:
        for lvl in range(data.columns.nlevels - 1):
            out.append("<tr>")
            prev, span = None, 0
            groups = []
            for c in cols:
                v = c[lvl]
                if v == prev:
                    span += 1
                else:
                    if prev is not None:
                        groups.append((prev, span))
                    prev, span = v, 1
            groups.append((prev, span))
            for v, sp in groups:
                text = html.escape(str(v)) if v not in ("", None) else ""
                klass = ' class="group"' if text else ""
                out.append(f'<th colspan="{sp}"{klass}>{text}</th>')
            out.append("</tr>")
    out.append("<tr>" + "".join(f'<th class="{cls[c]}">{col_label(c)}</th>' for c in cols) + "</tr>")
    out.append("</thead><tbody>")
    hl = list(highlight) if highlight is not None else [False] * len(data)
    for i in range(len(data)):
        tr = '<tr class="highlight">' if hl[i] else "<tr>"
        tds = []
        for c in cols:
            text = cells[c][i]
            if not isinstance(text, Md) and text != DASH and i18n.language() != "en":
                text = i18n.tr_known(text, "cell")
            # hashes, paths and other long unbroken tokens may wrap anywhere (else they overflow the page); in a cell that
            # also has Chinese words only the token is set in monospace
            token = _LONG_TOKEN.search(text) is not None
            inline_token = token and _CJK.search(text) is not None
            extra = " token" if token and not inline_token else ""
            # a short label of the first column (私人银行客户) is not split between lines (CSS: Chinese only)
            if c == cols[0] and cls[c] == "text" and len(text) <= _SHORT_LABEL and not any(ch.isspace() for ch in text):
                extra += " short"
            if cls[c] == "num" and not isinstance(text, Md):
                text = keep_together(text)
            text = text_html(text, markdown=not escape)
            if inline_token:
                text = _LONG_TOKEN.sub(lambda m: f'<span class="token">{m.group()}</span>', text)
            if zh and cls[c].startswith("text") and "short" not in extra:   # (Chromium breaks at <wbr> even in nowrap)
                text = typeset.words_html(text)
            tds.append(f'<td class="{cls[c]}{extra}">{text}</td>')
        out.append(tr + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    note_list = [notes] if isinstance(notes, str) else list(notes or [])
    if source:
        note_list.append(pmd("table note", "Source: {}", source))
    if note_list:
        out.append(f'<p class="table-note"><em>{_note_word()}</em> ' + " ".join(text_html(n) for n in note_list) + "</p>")
    out.append("</div>")
    return "\n".join(out)


def table(df: pd.DataFrame, caption: Md | str, number: int | str | None = None, notes: str | Sequence[str] | None = None,
          formats: Mapping[str, Formatter] | None = None, *, labels: Mapping[str, str] | None = None,
          index: bool | None = None, escape: bool = True, align: Mapping[str, str] | None = None,
          highlight: Sequence[bool] | pd.Series | None = None, source: str | None = None) -> Ref:
    """Display a numbered table with its caption above and notes below; return its label.

    * ``caption``: what, where and when ("Waiting time by branch, 2025Q2 vs 2025Q1"); literal
      text, or Markdown with $TeX$ when an :class:`Md` (``present.md("... *{}*", label)``).
      Notes, headers (``labels``) and cells likewise: an ``Md`` is Markdown, a ``str`` literal.
    * ``number``: None numbers automatically within the chapter ("Table 2.3").
    * ``formats``: column -> a callable, an int (decimals), ``"p"`` (APA p without the "p ="),
      ``"pct"``/``"pct:2"`` (proportion as percent), ``"pp"`` (percentage points, signed),
      ``"num:1"``, ``"signed:2"``, ``"int"``, a ``"{:.3f}"`` format string or a ``"%Y-%m-%d"``
      date format. Unformatted columns: integers with thousands separators, floats with two
      decimals, missing values as an em dash.
    * ``labels``: column -> header text (put the unit in it: "Waiting (min)").
    * ``index``: show the index as the first column(s); default only if it is named or not a
      plain RangeIndex. No DataFrame repr, no row numbers.
    * ``highlight``: a boolean per row, drawn in bold (e.g. significant after correction).
    """
    num = _next('table', number)
    label = pgettext("label", "Table {}").format(num)
    anchor = _anchor("table", num)
    markup = table_html(df, caption, label, notes, formats, labels=labels, index=index, escape=escape, align=align,
                        highlight=highlight, source=source, anchor=anchor)
    _display(markup, {"kind": "table", "label": label, "caption": str(caption), "caption_html": text_html(caption),
                      "anchor": anchor})
    return Ref(label)


# ---------------------------------------------------------------------------------------------
# Figures


def figure_html(fig, caption: Md | str, label: str | None = None, notes: str | Sequence[str] | None = None, *,
                format: str = "svg", dpi: int = 200, width: str | None = None, alt: str | None = None,
                anchor: str | None = None) -> str:
    """The HTML of a numbered figure (see :func:`figure`), without displaying it."""
    import matplotlib as mpl

    from study.report.figures import theme_rc

    if format not in ("svg", "png"):
        raise ValueError("figure format must be 'svg' (vector, default) or 'png' (for plots with many points)")
    buf = io.BytesIO()
    rc = {**theme_rc(), "svg.fonttype": "path"}
    rc.pop("font.family", None)  # keep the figure's own fonts
    rc.pop("font.sans-serif", None)
    with mpl.rc_context(rc):
        if format == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None})
            data = buf.getvalue()
            text = data.decode("utf-8")
            text = text[text.index("<svg"):]
            text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
            m = re.search(r'width="([\d.]+)pt"', text)
            natural = f"{float(m.group(1)) / 72:.2f}in" if m else None
            uri = "data:image/svg+xml;base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")
        else:
            fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
            data = buf.getvalue()
            w_px = int.from_bytes(data[16:20], "big")
            natural = f"{w_px / dpi:.2f}in"
            uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    style = f' style="width:{width or natural}"' if (width or natural) else ""
    alt_text = html.escape(alt or (re.sub(r"[$*_`]", "", caption) if isinstance(caption, Md) else str(caption)), quote=True)
    lab = f'<span class="label">{html.escape(label)}</span>{_gap()}' if label else ""
    out = [f'<figure class="study-figure"{f" id={chr(34)}{anchor}{chr(34)}" if anchor else ""}>',
           f'<figcaption>{lab}<span class="title">{text_html(caption)}</span></figcaption>',
           f'<img src="{uri}" alt="{alt_text}"{style}>']
    note_list = [notes] if isinstance(notes, str) else list(notes or [])
    if note_list:
        out.append(f'<p class="figure-note"><em>{_note_word()}</em> ' + " ".join(text_html(n) for n in note_list) + "</p>")
    out.append("</figure>")
    return "\n".join(out)


def figure(fig, caption: Md | str, number: int | str | None = None, notes: str | Sequence[str] | None = None, *,
           format: str = "svg", dpi: int = 200, width: str | None = None, alt: str | None = None) -> Ref:
    """Display a numbered figure with its caption; return its label ("Figure 2.1").

    The figure is embedded in the output (``format="svg"``: vector, glyphs as paths, sharp in
    print; ``"png"`` at ``dpi`` for plots with thousands of marks), then closed. ``width``: a CSS
    width ("80%", "4in"); default the figure's own size, at most the text width.
    """
    num = _next('figure', number)
    label = pgettext("label", "Figure {}").format(num)
    anchor = _anchor("figure", num)
    markup = figure_html(fig, caption, label, notes, format=format, dpi=dpi, width=width, alt=alt, anchor=anchor)
    _close(fig)
    _display(markup, {"kind": "figure", "label": label, "caption": str(caption), "caption_html": text_html(caption),
                      "anchor": anchor})
    return Ref(label)


def _close(fig) -> None:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and getattr(fig, "number", None) is not None:
        plt.close(fig)


def equation(tex: str, *, numbered: bool = True, where: Md | str | None = None) -> Ref:
    """Display a formula on its own line, numbered "(2.1)" at the right; ``where`` explains symbols
    (literal text, or Markdown with $TeX$ when an :class:`Md`)."""
    number = _next("equation") if numbered else ""
    anchor = _anchor("equation", number) if number else None
    num_html = f'<span class="eq-number">({number})</span>' if number else ""
    where_html = f'<p class="equation-where">{text_html(where)}</p>' if where else ""
    idattr = f' id="{anchor}"' if anchor else ""
    _display(f'<div class="equation"{idattr}>{math_html(tex, display=True)}{num_html}</div>{where_html}',
             {"kind": "equation", "number": number, "tex": tex})
    return Ref(f"({number})" if number else "")


# ---------------------------------------------------------------------------------------------
# Headline figures


def kpis(items: pd.DataFrame | Sequence[Mapping], caption: Md | str | None = None) -> None:
    """Headline figures as cards: one per row with ``label``, ``value`` (text), and optionally
    ``change`` (text, e.g. "+3.2 points vs 2025Q1"), ``note`` (e.g. the test) and ``status``
    (``good`` / ``bad`` / ``neutral``: the colour of the change; the words carry the meaning too).
    Texts as in :func:`text_html`: an :class:`Md` is Markdown, anything else literal."""
    rows = items.to_dict("records") if isinstance(items, pd.DataFrame) else list(items)
    cards = []
    for r in rows:
        status = str(r.get("status") or "neutral")
        if status not in ("good", "bad", "neutral"):
            raise ValueError(f"kpis: status must be good, bad or neutral, not {status!r}")
        parts = [f'<div class="kpi kpi-{status}">',
                 f'<div class="kpi-label">{text_html(r["label"])}</div>',
                 f'<div class="kpi-value">{text_html(r["value"])}</div>']
        if r.get("change") not in (None, ""):
            parts.append(f'<div class="kpi-change">{text_html(r["change"])}</div>')
        if r.get("note") not in (None, ""):
            parts.append(f'<div class="kpi-note">{text_html(r["note"])}</div>')
        parts.append("</div>")
        cards.append("".join(parts))
    cap = f'<p class="kpis-caption">{text_html(caption)}</p>' if caption else ""
    _display(f'<div class="kpis-block">{cap}<div class="kpis">{"".join(cards)}</div></div>', {"kind": "kpis"})
