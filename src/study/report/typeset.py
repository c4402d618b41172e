"""Typesetting of the report's text by the rules its readers expect: runs that must not break across lines.

Chinese text may break between any two characters (W3C "Requirements for Chinese Text Layout", clreq §3.1), and
Chromium does so; a line must still never split a number from its unit or percent sign, a date, a statistic
("p < 0.001", "t(37.9) = 2.13") or a bracketed interval (GB/T 15835-2011 §5, clreq §3.1.7 "unbreakable units").
English breaks at spaces, so the same runs need the same protection there ("81.4 / %", "p = / .038").

:func:`mark` finds these runs in the text of an HTML fragment (never in tags, attributes, styles, scripts or SVG) and
wraps each in ``<span class="nb">`` (``white-space: nowrap`` in report.css); the HTML's text is otherwise unchanged
(character references are written as the characters they stand for, markup characters escaped again). The check of
the rendered report (tests/test_typesetting.py) finds the same runs with :func:`runs` and fails on one outside a mark.

:func:`words` marks the short words of a Chinese table cell or header (at most :data:`SHORT` characters between
punctuation, spaces and script changes) unbreakable, so a narrow column wraps a header between its words, not one
character per line (聚/类/数).
"""

from __future__ import annotations

import html
import re

#: The class of a run that must stay on one line.
NB = "nb"

_NUM = r"[+\-−±]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+\-−±]?\.\d+"
_UNITS_ZH = ("个百分点|百分点|个月|分钟|小时|人次|%|天|周|个|份|家|件|张|项|分|名|次|条|人|元|倍|岁|期|类|级|位|h|min|pp")
_UNITS_EN = r"%|pp|min|h|hours?|days?|weeks?|points?|per million visits"
_MONTHS_EN = "January|February|March|April|May|June|July|August|September|October|November|December"

#: Runs that must not break, in the order they are tried at a position (an interval before the numbers inside it).
_PATTERNS = {
    "zh": [
        r"\[[^\[\]<>]{0,60}?\d[^\[\]<>]{0,60}?\]",                                       # [0.10, 1.12]
        r"\d{4}年(?:\d{1,2}月(?:\d{1,2}日)?|第[一二三四]季度)|\d{1,2}月\d{1,2}日",         # 2025年5月19日, 2025年第二季度
        r"(?<![A-Za-z])(?:[A-Za-zα-ωΑ-Ωχ][²₀-₉]*(?:\([^()]{0,24}\))?)\s?[=<>≤≥≈]\s?(?:" + _NUM + ")",   # p < 0.001, t(37.9) = 2.13
        r"\d{1,2}:\d{2}(?:\s?[–-]\s?\d{1,2}:\d{2})?",                                     # 09:00–17:00
        r"（[\u4e00-\u9fff]{2,6}）",                                                       # （未达标）, a verdict in brackets
        r"[≤≥]\s?(?:" + _NUM + r")\s?(?:" + _UNITS_ZH + ")?",                                 # ≤ 5分钟, ≥ 95%
        r"第?(?:" + _NUM + r")(?:\s?[–~-]\s?(?:" + _NUM + r"))?\s?(?:" + _UNITS_ZH + ")",   # 12.5分钟, 81.4%, 第3名, 6–7章
        r"(?:" + _NUM + r")\s?[–~]\s?(?:" + _NUM + ")",                                   # 0–100
    ],
    "en": [
        r"\[[^\[\]<>]{0,60}?\d[^\[\]<>]{0,60}?\]",
        r"\d{1,2} (?:" + _MONTHS_EN + r") \d{4}",                                           # 19 May 2025
        r"(?<![A-Za-z])(?:[A-Za-zα-ωΑ-Ωχ][²₀-₉]*(?:\([^()]{0,24}\))?)\s?[=<>≤≥≈]\s?(?:" + _NUM + ")",
        r"\d{1,2}:\d{2}(?:\s?[–-]\s?\d{1,2}:\d{2})?",
        r"(?:" + _NUM + r")(?:\s?[–-]\s?(?:" + _NUM + r"))? (?:" + _UNITS_EN + r")\b|(?:" + _NUM + r") %",
        r"(?:" + _NUM + r")\s?–\s?(?:" + _NUM + ")",
    ],
}
_RUNS = {lang: re.compile("|".join(f"(?:{p})" for p in pats)) for lang, pats in _PATTERNS.items()}

_TAG = re.compile(r"(<!--.*?-->|<[^>]*>)", re.S)
_RAW = ("style", "script", "svg", "title", "textarea")


def runs(text: str, lang: str) -> list[tuple[int, int]]:
    """The (start, end) of every run of ``text`` that must stay on one line (a run containing no space or
    break opportunity is left out only when it is a single character)."""
    rx = _RUNS["zh" if lang == "zh" else "en"]
    return [(m.start(), m.end()) for m in rx.finditer(text) if m.end() - m.start() > 1]


def _wrap(text: str, lang: str) -> str:
    """An HTML text node (escaped) with its runs marked."""
    plain = html.unescape(text)
    found = runs(plain, lang)
    if not found:
        return text
    out, at = [], 0
    for a, b in found:
        out.append(html.escape(plain[at:a], quote=False))
        out.append(f'<span class="{NB}">{html.escape(plain[a:b], quote=False)}</span>')
        at = b
    out.append(html.escape(plain[at:], quote=False))
    return "".join(out)


def mark(fragment: str, lang: str) -> str:
    """``fragment`` with every unbreakable run of its text wrapped in ``<span class="nb">`` (see the module docstring).

    Text inside an existing ``nb`` span is left as it is, so marking twice changes nothing."""
    parts = _TAG.split(fragment)
    out = []
    raw: str | None = None      # inside <style>, <svg>, ...: copied as it is
    nb_depth = 0                # inside a <span class="nb">
    span_stack: list[bool] = []
    for i, part in enumerate(parts):
        if i % 2:   # a tag or comment
            t = part[1:].split(None, 1)[0].rstrip(">/").lower() if part.startswith("<") and not part.startswith("<!") else ""
            if raw is not None:
                if t == f"/{raw}":
                    raw = None
            elif t in _RAW and not part.endswith("/>"):
                raw = t
            elif t == "span":
                is_nb = f'class="{NB}"' in part
                span_stack.append(is_nb)
                nb_depth += is_nb
            elif t == "/span" and span_stack:
                nb_depth -= span_stack.pop()
            out.append(part)
        elif raw is not None or nb_depth or not part.strip():
            out.append(part)
        else:
            out.append(_wrap(part, lang))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Chinese words in table cells and headers

#: A run of Han characters up to this length is one word of a table cell: it never breaks (聚类数, 无显著变化).
SHORT = 5
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(f"[{_HAN}]+")
#: Function characters that end a word group: a longer run is cut after them first (复杂及|突发问题处理).
_JOINERS = "及与和的之或并"


def _chunks(run: str) -> list[str]:
    """A long run of Han characters cut where a line may break: after a joiner, then into pairs (most Chinese words
    have two characters), a single character left at the end joining the pair before it, so no line holds one
    character alone (平均|业务|办理|时间, 统计|检验力)."""
    groups, cur = [], ""
    for ch in run:
        cur += ch
        if ch in _JOINERS and len(cur) > 1:
            groups.append(cur)
            cur = ""
    if cur:
        if len(cur) == 1 and groups:
            groups[-1] += cur
        else:
            groups.append(cur)
    out = []
    for g in groups:
        if len(g) <= SHORT:
            out.append(g)
            continue
        pairs = [g[i:i + 2] for i in range(0, len(g), 2)]
        if len(pairs[-1]) == 1:
            last = pairs.pop()
            pairs[-1] += last
        out.extend(pairs)
    return out


def words(text: str) -> str:
    """An HTML text node of a Chinese table cell or header with a ``<wbr>`` where a line may break inside a run of Han
    characters (see :func:`_chunks`); report.css keeps every other pair of Han characters together
    (``word-break: keep-all``), so a narrow column wraps a header between words, never one character per line."""
    plain = html.unescape(text)
    if not any(len(m.group()) > SHORT for m in _HAN_RUN.finditer(plain)):
        return text
    kept = runs(plain, "zh")   # a date or a number with its unit ("2025年第一季度") is no place for a break
    out, at = [], 0
    for m in _HAN_RUN.finditer(plain):
        if len(m.group()) <= SHORT:
            continue
        inside = [(max(a, m.start()), min(b, m.end())) for a, b in kept if a < m.end() and m.start() < b]
        # the run's parts outside dates and numbers are cut into words; a line may also break where such a part meets
        # a date ("2025年第一季度|数值")
        pieces, pos = [], m.start()
        for a, b in inside:
            if pos < a:
                pieces += _chunks(plain[pos:a])
            pieces.append(plain[a:b])
            pos = b
        if pos < m.end():
            pieces += _chunks(plain[pos:m.end()])
        if len(pieces) < 2:
            continue
        out.append(html.escape(plain[at:m.start()], quote=False))
        out.append("<wbr>".join(html.escape(c, quote=False) for c in pieces))
        at = m.end()
    out.append(html.escape(plain[at:], quote=False))
    return "".join(out)


def words_html(fragment: str) -> str:
    """:func:`words` applied to the text of an HTML fragment (a table cell rendered from Markdown), not to its tags."""
    parts = _TAG.split(fragment)
    return "".join(p if i % 2 or not p.strip() else words(p) for i, p in enumerate(parts))
