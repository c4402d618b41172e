"""What a value may be: the text rules and the magnitude bounds, defined once.

Every string that can reach a report, a file or the terminal — study.yml text, column headers, bank
names, categories, counter ids and other labels in the data — is held to the same rules:

* **Refused**: C0 and C1 control characters (``U+0000``–``U+001F``, ``U+007F``–``U+009F``) and the
  bidirectional marks, embeddings, overrides and isolates (``U+061C``, ``U+200E``/``U+200F``,
  ``U+202A``–``U+202E``, ``U+2066``–``U+2069``; Unicode TR 9, "Trojan Source"). They print
  invisibly, ring the terminal, move its cursor, reverse the text ("Bank A" shown as "A knaB") or make
  an SVG figure ill-formed XML. A data row holding one in a text column is rejected with the reason
  ``control_character:<column>``; a header holding one refuses the file. study.yml text may hold tab
  and newline (YAML block text), data values may not.
* **Removed, with a warning**: invisible characters — zero-width space, non-joiner and joiner
  (``U+200B``–``U+200D``), word joiner and invisible operators (``U+2060``–``U+2064``), the
  zero-width no-break space / byte-order mark (``U+FEFF``), the line and paragraph separators
  (``U+2028``, ``U+2029``), the soft hyphen (``U+00AD``), the Mongolian vowel separator (``U+180E``)
  and the tag characters (``U+E0000``–``U+E007F``). Pasted from a web page or a word processor they
  make ``B01`` and ``B01\\u200b`` two branches; they are removed from data values and headers (the
  dataset's notes count them per column) and refused in study.yml, where the key path says where.
* **Warned at validate**: characters the report's fonts cannot draw (:mod:`study.fonts`), which would
  print as empty boxes.

The classes are code-point ranges (:data:`CONTROL_RANGES`, :data:`BIDI_RANGES`,
:data:`INVISIBLE_RANGES`); :data:`REFUSED` and :data:`INVISIBLE` are Python regular expressions built
from them and :data:`REFUSED_RE2` / :data:`INVISIBLE_RE2` the same classes in RE2 syntax, for
DuckDB's ``regexp_matches`` / ``regexp_replace`` — so the pandas path and a streaming SQL path apply
one definition. :func:`scan` applies the data rule to a column of text.

**Magnitudes.** Counts a study states (digital sessions per quarter, the units of channel coverage,
counters per branch), durations it sets (standard minutes, deadlines, response targets) and values in
the data (benchmark values) are checked against bounds a bank can have (:data:`BOUNDS`, each with its
reason); a study may raise a bound under ``limits`` in study.yml (same names). A count of 10^30
sessions is a typo or an attack, and printed it would read as a real number.

Messages never echo a value raw: :func:`escape` writes every refused or invisible character as an
escape (``\\x1b``, ``\\u202e``) and :func:`shown` also shortens the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Character classes (inclusive code-point ranges)

#: C0 controls, DEL and C1 controls.
CONTROL_RANGES: tuple[tuple[int, int], ...] = ((0x00, 0x1F), (0x7F, 0x9F))
#: Bidirectional marks, embeddings, overrides and isolates (Unicode TR 9).
BIDI_RANGES: tuple[tuple[int, int], ...] = ((0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
#: Invisible characters: removed from data values (with a warning), refused in study.yml.
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),     # soft hyphen
    (0x180E, 0x180E),     # Mongolian vowel separator
    (0x200B, 0x200D),     # zero-width space, non-joiner, joiner
    (0x2028, 0x2029),     # line separator, paragraph separator
    (0x2060, 0x2064),     # word joiner, invisible function application / times / separator / plus
    (0xFEFF, 0xFEFF),     # zero-width no-break space (byte-order mark)
    (0xE0000, 0xE007F),   # tag characters
)
#: What study.yml's block text may hold of the C0 controls.
YAML_ALLOWED = frozenset("\t\n")


def _python_class(ranges, exclude: frozenset[str] = frozenset()) -> str:
    def esc(cp: int) -> str:
        return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"

    parts = []
    for lo, hi in ranges:
        cps = [cp for cp in range(lo, hi + 1) if chr(cp) not in exclude] if exclude else None
        if cps is None:
            parts.append(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}")
        else:
            parts += [esc(cp) for cp in cps]
    return "[" + "".join(parts) + "]"


def _re2_class(ranges) -> str:
    esc = lambda cp: f"\\x{{{cp:x}}}"  # noqa: E731  (RE2: \x{10FFFF})
    return "[" + "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges) + "]"


#: Characters refused in data values and headers (controls and bidirectional formatting).
REFUSED = re.compile(_python_class(CONTROL_RANGES + BIDI_RANGES))
#: Characters refused in study.yml text (the same, but tab and newline are YAML block text).
REFUSED_IN_YAML = re.compile(_python_class(CONTROL_RANGES + BIDI_RANGES, exclude=YAML_ALLOWED))
#: Invisible characters (removed from data values, refused in study.yml).
INVISIBLE = re.compile(_python_class(INVISIBLE_RANGES))
#: The same classes in RE2 syntax (DuckDB ``regexp_matches(col, REFUSED_RE2)``, ``regexp_replace(col, INVISIBLE_RE2, '', 'g')``).
REFUSED_RE2 = _re2_class(CONTROL_RANGES + BIDI_RANGES)
INVISIBLE_RE2 = _re2_class(INVISIBLE_RANGES)
#: Anything a message or a rejected-rows file shows escaped.
_ESCAPED = re.compile(_python_class(CONTROL_RANGES + BIDI_RANGES + INVISIBLE_RANGES))

#: The row-rejection reason code of a refused character in a data value.
REASON = "control_character"


def escape(text: str, keep: str = "") -> str:
    """``text`` with every refused or invisible character written as a Python escape (``\\x07``,
    ``\\u202e``, ``\\U000e0041``); other characters (Chinese included) unchanged. ``keep``: characters
    left as they are (e.g. newline in a multi-line message)."""
    def one(m: re.Match) -> str:
        ch = m.group()
        if ch in keep:
            return ch
        cp = ord(ch)
        return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"
    return _ESCAPED.sub(one, str(text))


def shown(text, limit: int = 60) -> str:
    """A value as a message may quote it: escaped (:func:`escape`), in quotes, cut to ``limit`` characters."""
    s = escape(str(text))
    return repr(s if len(s) <= limit else s[:limit] + "…").replace("\\\\", "\\")


def refused_char(text: str, yaml: bool = False) -> str | None:
    """The first refused character of ``text`` (None if none); ``yaml``: the study.yml rule (tab, newline allowed)."""
    m = (REFUSED_IN_YAML if yaml else REFUSED).search(text)
    return m.group() if m else None


def invisible_char(text: str) -> str | None:
    """The first invisible character of ``text`` (None if none)."""
    m = INVISIBLE.search(text)
    return m.group() if m else None


def codepoint(ch: str) -> str:
    """``U+202E``: how messages name a character."""
    return f"U+{ord(ch):04X}"


@dataclass(frozen=True)
class Scan:
    """The data rule applied to one column of text (:func:`scan`)."""

    text: object              # pandas Series: the values with invisible characters removed
    refused: object           # pandas Series of bool: the value holds a refused character (its row is rejected)
    removed: int              # how many values had invisible characters removed
    removed_chars: tuple[str, ...]   # which ones (code points, sorted)


def scan(values) -> Scan:
    """Apply the data text rule to a pandas Series of text (missing values stay missing).

    Invisible characters are removed; a value holding a control or bidirectional character is flagged. Run
    with Arrow's RE2 kernels on :data:`REFUSED_RE2` and :data:`INVISIBLE_RE2`, the patterns a DuckDB pass uses.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values.astype("string"), type=pa.large_string(), from_pandas=True)
    has_invisible = pc.fill_null(pc.match_substring_regex(arr, INVISIBLE_RE2), False)
    n_removed = int(pc.sum(has_invisible).as_py() or 0)
    removed_chars: set[str] = set()
    if n_removed:
        for v in pc.unique(pc.filter(arr, has_invisible)).to_pylist():
            removed_chars.update(codepoint(c) for c in INVISIBLE.findall(v))
        arr = pc.replace_substring_regex(arr, INVISIBLE_RE2, "")
    refused = pc.fill_null(pc.match_substring_regex(arr, REFUSED_RE2), False)
    text = pd.Series(pd.array(arr.to_pylist(), dtype="string"), index=values.index) if n_removed else values
    return Scan(text, pd.Series(refused.to_numpy(zero_copy_only=False), index=values.index), n_removed,
                tuple(sorted(removed_chars)))


def removal_note(column: str, n: int, chars) -> str:
    """The dataset note for invisible characters removed from a column."""
    return (f"column {column}: invisible characters ({', '.join(chars)}) removed from {n:,} value(s) "
            "(zero-width, soft hyphen, line separator or tag characters, usually pasted from a web page)")


def clean_header(names, path) -> tuple[list[str], list[str]]:
    """Column names with invisible characters removed, and the notes saying so; a name holding a control or
    bidirectional character refuses the file (:class:`~study.errors.DataFileError`, the name escaped)."""
    from study.errors import DataFileError

    out, notes = [], []
    for name in names:
        name = str(name)
        bad = refused_char(name)
        if bad is not None:
            raise DataFileError(f"{path}: the column name {shown(name)} contains the control or text-direction character "
                                f"{codepoint(bad)}, which would print invisibly or reorder the text. Rename the column in the "
                                "header (retype it) and export the file again.")
        clean = INVISIBLE.sub("", name)
        if clean != name:
            notes.append(f"column name {shown(name)}: invisible characters "
                         f"({', '.join(sorted({codepoint(c) for c in INVISIBLE.findall(name)}))}) removed")
        out.append(clean)
    return out, notes


# ---------------------------------------------------------------------------------------------
# Magnitudes


@dataclass(frozen=True)
class Bound:
    """The largest value a bank can plausibly have for a quantity, and why (printed in messages and Appendix A)."""

    name: str        # the key under study.yml ``limits`` that raises it
    maximum: float
    reason: str


#: Bounds a bank can have. Sources: the largest banks serve about 7 × 10^8 customers and run about 15,000
#: branches; a branch hall has at most a few dozen counters; a complaint deadline or a response target of
#: more than 180 days is not a service-level term; a business type's standard above a working day is not a
#: standard. Each can be raised in study.yml under ``limits`` (e.g. ``limits: {max_sessions_per_quarter: 2e11}``).
BOUNDS: dict[str, Bound] = {b.name: b for b in (
    Bound("max_sessions_per_quarter", 1e11, "digital sessions in one quarter (10^9 customers with 100 sessions each)"),
    Bound("max_units", 2e9, "units of channel coverage (target areas, service points or customers)"),
    Bound("max_counters", 200, "counters of one branch"),
    Bound("max_standard_minutes", 1440, "a business type's standard or ideal time (one day)"),
    Bound("max_deadline_hours", 180 * 24, "a complaint deadline or response target (180 days)"),
    Bound("max_benchmark_value", 1e12, "a benchmark value (in the metric's unit)"),
)}


def bound(name: str, overrides: dict | None = None) -> float:
    """The bound ``name``, raised (or lowered) by ``overrides`` (study.yml ``limits``) where given."""
    value = (overrides or {}).get(name)
    return float(value) if value is not None else BOUNDS[name].maximum


def magnitude_problem(value, name: str, overrides: dict | None = None) -> str | None:
    """None if ``value`` is a finite number within the bound ``name``; otherwise the sentence saying why not."""
    import math

    b = BOUNDS[name]
    limit = bound(name, overrides)
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return f"{shown(value)} is not a number"
    if not math.isfinite(v):
        return f"{value!r} is not a finite number"
    if abs(v) > limit:
        return (f"{value:,.6g} is beyond what a bank can have for {b.reason}: at most {limit:,.0f} "
                f"(limits.{name} in study.yml raises the bound)")
    return None


def glyph_notes(distinct: dict) -> list[str]:
    """Warnings for the columns whose values hold characters the report's fonts cannot draw (:mod:`study.fonts`):
    ``distinct`` maps a column to its distinct values. One note per column, naming the characters."""
    from study import fonts

    out = []
    for column, vals in distinct.items():
        vals = [v for v in vals if isinstance(v, str)]
        chars = fonts.undrawable(vals)
        if chars:
            hit = set(chars)
            n = sum(1 for v in vals if hit.intersection(v))
            out.append(f"column {column}: {n:,} distinct value(s) hold characters the report's fonts cannot draw "
                       f"({fonts.describe(chars)}); the report prints them as empty boxes. Replace them in the source "
                       "data where a common character will do.")
    return out


def undrawable_study_text(study) -> list[tuple[str, list[str]]]:
    """The study.yml texts holding characters the report's fonts cannot draw: (key path, characters), in file order."""
    from study import fonts

    out: list[tuple[str, list[str]]] = []

    def walk(node, loc: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{loc}.{k}" if loc else str(k))
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f"{loc}[{i}]")
        elif isinstance(node, str) and not node.isascii():
            chars = fonts.undrawable([node])
            if chars:
                out.append((loc, chars))

    walk(study.model_dump(mode="json"), "")
    return out


def count_removed(scans: dict[str, Scan]) -> list[str]:
    """The notes of a dataset's scans (one per column that had invisible characters removed)."""
    return [removal_note(c, s.removed, s.removed_chars) for c, s in scans.items() if s.removed]


__all__ = ["BIDI_RANGES", "BOUNDS", "CONTROL_RANGES", "INVISIBLE", "INVISIBLE_RANGES", "INVISIBLE_RE2", "REASON", "REFUSED",
           "REFUSED_IN_YAML", "REFUSED_RE2", "Bound", "Scan", "bound", "clean_header", "codepoint", "count_removed",
           "escape", "glyph_notes", "invisible_char", "magnitude_problem", "refused_char", "removal_note", "scan", "shown", "undrawable_study_text"]
