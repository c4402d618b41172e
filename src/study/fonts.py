"""The report's fonts, and which characters they can draw.

The report is set in one CJK family (Noto Sans CJK SC, Debian ``fonts-noto-cjk``; elsewhere the first
installed of :data:`CJK_FAMILIES`), whose Latin glyphs are the text face, with DejaVu Sans filling what
it lacks — in the HTML and PDF (the style sheet) and in the figures (:mod:`study.report.figures`). A
character neither font has prints as an empty box ("tofu"): characters outside the Basic Multilingual
Plane such as 𠀀 (CJK Extension B) or 🏦 (an emoji) in a bank name. :func:`undrawable` finds them from
the fonts' character maps (read with fontTools, which matplotlib also uses), so ``validate`` can warn
before the report is printed.

A foundation module: the data layer (the warning at validate) and the report layer (the figure theme)
both read it.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

# Noto Sans CJK SC first: its Latin glyphs are Source Sans, the face of the report's text, and it has the
# Chinese glyphs; DejaVu Sans fills any glyph it lacks. Elsewhere the first installed CJK family is used.
LATIN_FAMILIES = ["DejaVu Sans"]
CJK_FAMILIES = ["Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei",
                "PingFang SC", "SimHei", "Arial Unicode MS", "Droid Sans Fallback"]


def available_families() -> list[str]:
    """The report's font families installed here: the first CJK family, then the first Latin one."""
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    latin = [f for f in LATIN_FAMILIES if f in have][:1]
    cjk = [f for f in CJK_FAMILIES if f in have][:1]
    return cjk + latin


def _regular_face(family: str):
    """(file, face index) of the regular face of ``family`` as matplotlib knows it, or None."""
    from matplotlib import font_manager

    entries = [f for f in font_manager.fontManager.ttflist if f.name == family]
    if not entries:
        return None
    entries.sort(key=lambda f: (f.style != "normal", abs(int(f.weight) - 400) if str(f.weight).isdigit() else 999,
                                f.stretch != "normal", f.fname))
    return entries[0].fname, getattr(entries[0], "index", 0) or 0


@functools.lru_cache(maxsize=1)
def coverage() -> frozenset[int] | None:
    """The code points the report's fonts map to a glyph (None when none of them is installed: nothing to check against)."""
    from fontTools.ttLib import TTFont

    points: set[int] = set()
    found = False
    for family in available_families():
        face = _regular_face(family)
        if face is None:
            continue
        path, index = face
        try:
            font = TTFont(path, fontNumber=index, lazy=True) if str(path).lower().endswith((".ttc", ".otc")) \
                else TTFont(path, lazy=True)
            cmap = font.getBestCmap() or {}
        except Exception:
            continue
        points.update(cmap)
        found = True
    return frozenset(points) if found else None


def _ignorable(ch: str) -> bool:
    """Characters that are not drawn as glyphs of their own: whitespace, controls and format characters
    (handled by :mod:`study.data.values`), variation selectors."""
    cp = ord(ch)
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or 0xFE00 <= cp <= 0xFE0F \
        or 0xE0100 <= cp <= 0xE01EF


def undrawable(texts: Iterable[str]) -> list[str]:
    """The characters of ``texts`` that none of the report's fonts can draw, in order of code point ([] when
    no report font is installed, so nothing can be said)."""
    have = coverage()
    if have is None:
        return []
    seen: set[str] = set()
    for text in texts:
        if text is None or not isinstance(text, str):
            continue
        if text.isascii():
            seen.update(ch for ch in text if ord(ch) not in have and not _ignorable(ch))
            continue
        seen.update(ch for ch in set(text) if ord(ch) not in have and not _ignorable(ch))
    return sorted(seen)


def describe(chars: list[str], limit: int = 8) -> str:
    """``𠀀 (U+20000), 🏦 (U+1F3E6)``: how a warning names characters."""
    shown = ", ".join(f"{c} (U+{ord(c):04X})" for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")
