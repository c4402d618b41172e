"""Checks of a rendered report as a Chinese reviewer reads it (issue 21) and of its layout in both languages (issue 20
§6): each function takes the report's HTML (or PDF, or render.json) and returns the problems found, so the sample's
end-to-end test and the generated-study suite run the same checks.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

from study.report import pdftext, typeset
from tests.test_terminology import spacing_hits, terminology, variant_hits

#: The source report's chapter titles (seed 000, /work/shared/zh-glossary.md) and the glossary's appendix names.
CHAPTERS_ZH = ["文档概要", "银行服务质量现状分析", "银行服务质量改进策略", "服务质量改进方案实施", "服务质量改进效果评估",
               "结论与建议", "方法说明", "数据质量", "数据来源与可复现信息"]

#: Latin words a Chinese reader expects in the body: statistical notation and established abbreviations, the names
#: of cited authors and of the methods named after them. Anything else of four or more letters before Appendix A is
#: English left in.
ALLOWED_LATIN = {
    # abbreviations
    "RMSEA", "SRMR", "HTMT", "CITC", "Logit", "HAC", "BCa", "OLS", "NPS", "SQI", "CFA", "LMG", "DID", "MDE", "KMO", "VIF",
    "CFI", "TLI", "AVE", "ICT", "FPY", "ITS", "App",
    # cited authors and eponymous methods
    "Holm", "Benjamini", "Hochberg", "Bonferroni", "Wilson", "Garwood", "Newey", "West", "Hedges", "Cohen", "Cronbach",
    "McDonald", "Kendall", "Spearman", "Pearson", "Wald", "Feldt", "Shapley", "Grömping", "Webb", "Wagner", "Kish",
    "Montgomery", "Nunnally", "Bernstein", "Hair", "Fornell", "Larcker", "Henseler", "Ringle", "Sarstedt", "Clark",
    "Watson", "Bentler", "Kaiser", "Bartlett", "Heywood", "Breusch", "Pagan", "Koenker", "Jarque", "Bera", "Taylor",
    "Satterthwaite", "Erlang", "Likert", "Poisson", "Roemer", "Rademacher",
}
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ÿ]{4,}")
#: An R function or package cited as the reference implementation ("R svyglm", "R survey包").
_R_CITATION = re.compile(r"(?<![A-Za-z])R (?:语言)?[A-Za-z][\w.]*")
_ISO_MONTH = re.compile(r"(?<![\d-])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])(?![\d-])")
_RAW = re.compile(r"<(style|svg|script|title)\b.*?</\1>", re.S)
_BLOCKS = re.compile(r"</?(?:p|div|td|th|li|h[1-6]|caption|figcaption|dt|dd|tr|table|section|header|nav|ol|ul|br)\b[^>]*>")


_NUMBER_SPAN = re.compile(r'<span class="(?:number|label)">(.*?)</span>', re.S)


def text_of(html: str) -> str:
    """The visible text of an HTML page or fragment (no styles, SVG, attributes), blocks on their own lines (a heading's
    number and a caption's label apart from their titles)."""
    body = _NUMBER_SPAN.sub(lambda m: f"\n{m.group(1)}\n", _RAW.sub(" ", html))
    body = _BLOCKS.sub("\n", body)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", body))


def before_appendix(html: str) -> str:
    """The HTML of the report before Appendix A (the title page, contents and chapters 1-6)."""
    at = html.find('data-chapter="A"')
    return html if at < 0 else html[:html.rfind("<h1", 0, at)]


def main(html: str) -> str:
    """The chapters and appendices (no title page or contents)."""
    at = html.find("<main")
    return html[at:] if at >= 0 else html


def latin_words(html: str) -> list[str]:
    """English words (four or more Latin letters) in the Chinese report before Appendix A, outside the allow-list."""
    text = _R_CITATION.sub(" ", text_of(before_appendix(html)))
    return sorted({w for w in _LATIN_WORD.findall(text) if w not in ALLOWED_LATIN})


def before_provenance(html: str) -> str:
    """The chapters and Appendices A and B (Appendix C lists the input files by their names)."""
    at = html.find('data-chapter="C"')
    body = main(html)
    return body if at < 0 else body[:body.rfind("<h1", 0, body.find('data-chapter="C"'))]


def terminology_variants(html: str) -> list[str]:
    text = text_of(before_provenance(html))
    rows = terminology()
    return sorted({hit for line in text.splitlines() for hit in variant_hits(line, rows)})


def spacing(html: str) -> list[str]:
    """Spaces typed between Han characters and Latin letters or digits in the chapters' text (the appendices quote
    file names and notation)."""
    text = text_of(main(before_appendix(html)))
    return sorted({hit for line in text.splitlines() for hit in spacing_hits(line)})


def iso_months(html: str) -> list[str]:
    return sorted(set(_ISO_MONTH.findall(text_of(main(html)))))


def unmarked_runs(html: str, lang: str) -> list[str]:
    """Runs that must not break (a number with its unit, a date, a statistic, an interval) found in the text outside a
    non-breaking mark (``<span class="nb">``): each such place may break across lines."""
    body = _NUMBER_SPAN.sub(lambda m: f"<br>{m.group(1)}<br>", _RAW.sub(" ", main(html)))
    body = re.sub(r'<span class="nb">(?:[^<]|<(?!/?span)[^>]*>)*</span>', "\u25a0", body)   # a marked run: one block
    out = set()
    for block in _BLOCKS.split(body):
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", block))
        for a, b in typeset.runs(text, lang):
            if "\u25a0" not in text[a:b]:
                out.add(text[a:b])
    return sorted(out)


def monospace_prose_cells(html: str) -> list[str]:
    """Table cells set in monospace (class ``token``) that hold Chinese text."""
    return [text_of(c)[:40] for c in re.findall(r'<td class="[^"]*\btoken\b[^"]*">(.*?)</td>', html, re.S)
            if re.search(r"[\u4e00-\u9fff]", c)]


def character_references(html: str) -> list[str]:
    """Markup or character references shown as text ("91&#46;0 %", "&lt;b&gt;" typed by the toolkit itself)."""
    text = text_of(main(html))
    return sorted(set(re.findall(r"&(?:#\d+|#x[0-9a-fA-F]+|[a-z]+);", text)))


def chapter_titles(html: str) -> list[str]:
    titles = re.findall(r'<h1 class="chapter-title"[^>]*>(.*?)</h1>', html, re.S)
    return [re.sub(r"^\s*\S+\s+", "", text_of(t).strip(), count=1).strip() if text_of(t).strip()[:1].isdigit()
            or text_of(t).strip().startswith("附录") else text_of(t).strip() for t in titles]


def wrong_chapter_titles(html: str) -> list[str]:
    shown = chapter_titles(html)
    return [f"{s!r} (source: {e!r})" for s, e in zip(shown, CHAPTERS_ZH) if s != e] + \
        ([f"{len(shown)} chapters"] if len(shown) != len(CHAPTERS_ZH) else [])


def misread_characters(pdf: Path) -> list[str]:
    """Characters a search would miss in the PDF's text layer (CJK radicals, figure dashes, ligatures), by pypdf and,
    when installed, poppler's pdftotext."""
    found = {f"pypdf: {c!r}" for c in pdftext.MISREAD.findall("".join(pdftext.pages_text(pdf)))}
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        found |= {f"pdftotext: {c!r}" for c in pdftext.MISREAD.findall(text)}
    return sorted(found)


def layout_notes(render_json: Path) -> list[str]:
    notes = json.loads(Path(render_json).read_text(encoding="utf-8")).get("notes", [])
    return [n for n in notes if n.startswith("layout")]   # "layout (zh-Hans): …"


def chinese_report(html: str) -> dict[str, list[str]]:
    """Every check of the Chinese report's HTML, by name (an empty list: passed)."""
    return {"latin words before Appendix A": latin_words(html), "terminology variants": terminology_variants(html),
            "space between Han and Latin": spacing(html), "ISO months": iso_months(html), "ISO dates": iso_dates(html),
            "breakable number, date, statistic or interval": unmarked_runs(html, "zh"),
            "monospace prose cells": monospace_prose_cells(html), "character references": character_references(html),
            "chapter titles": wrong_chapter_titles(html)}


_ISO_DATE = re.compile(r"(?<![\d-])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\d-])")


def iso_dates(html: str) -> list[str]:
    """ISO dates (2025-04-01) in the chapters: Chinese readers read 2025年4月1日."""
    return sorted(set(_ISO_DATE.findall(text_of(main(before_appendix(html))))))
