"""Typesetting and page layout (issue 21 §4, issue 20 §6): runs that must not break, Chinese headers that wrap between
words, tables that fit the A4 text width (or go on a landscape page), chapters that do not open on a near-empty page."""

from __future__ import annotations

import re

import pytest

from study.report import layout, typeset
from study.report import render as report


def _nb(html: str) -> list[str]:
    return re.findall(r'<span class="nb">([^<]*)</span>', html)


@pytest.mark.parametrize("text, runs", [
    ("总体满意度为78.8分（95%置信区间 [76.1, 80.2]），p = 0.038", ["78.8分", "95%", "[76.1, 80.2]", "p = 0.038"]),
    ("智能客服于2025年5月19日上线，2025年第二季度较上季度下降−2.9个百分点", ["2025年5月19日", "2025年第二季度", "−2.9个百分点"]),
    ("t(1,458) = −1.07；χ²(1) = 24.15；09:00–17:00；第3名（共4家）；0–100", ["t(1,458) = −1.07", "χ²(1) = 24.15", "09:00–17:00",
                                                                       "第3名", "4家", "0–100"]),
    ("平均服务时间 ≤ 5分钟，客户满意度 ≥ 95%：84.8%（未达标）", ["≤ 5分钟", "≥ 95%", "84.8%", "（未达标）"]),
])
def test_chinese_runs_are_marked(text, runs):
    assert _nb(typeset.mark(f"<p>{text}</p>", "zh")) == runs


def test_english_runs_are_marked():
    out = typeset.mark("<td>81.4 % [77.6 %, 84.7 %], p &lt; .001, 19 May 2025, 20.6 min, +1.5 pp</td>", "en")
    assert _nb(out) == ["81.4 %", "[77.6 %, 84.7 %]", "p &lt; .001", "19 May 2025", "20.6 min", "+1.5 pp"]


def test_marking_leaves_markup_and_styles_alone_and_is_idempotent():
    page = ('<style>p { width: 12px }</style><p title="1.5 min">Wait <b>20.6 min</b> at 09:00</p>'
            '<svg><text>12 %</text></svg><img alt="3.2 %" src="data:image/png;base64,AA==">')
    once = typeset.mark(page, "en")
    assert "<style>p { width: 12px }</style>" in once and '<svg><text>12 %</text></svg>' in once
    assert 'title="1.5 min"' in once and 'alt="3.2 %"' in once
    assert '<b><span class="nb">20.6 min</span></b>' in once and typeset.mark(once, "en") == once
    # text is re-escaped, never turned into markup
    assert typeset.mark("<p>&lt;script&gt; 5 %</p>", "en") == '<p>&lt;script&gt; <span class="nb">5 %</span></p>'


def test_chinese_words_break_between_pairs_never_one_character_alone():
    assert typeset.words("平均业务办理时间（分钟）") == "平均<wbr>业务<wbr>办理<wbr>时间（分钟）"
    assert typeset.words("聚类数") == "聚类数"   # short words never break
    assert typeset.words("复杂及突发问题处理") == "复杂及<wbr>突发<wbr>问题<wbr>处理"
    for text in ("统计检验力测算表", "一二三四五六七", "各网点各时段所需窗口数与实际使用窗口数"):
        pieces = typeset.words(text).split("<wbr>")
        assert all(len(p) >= 2 for p in pieces), pieces
    assert typeset.words("2025年第一季度数值") == "2025年第一季度<wbr>数值"   # no break inside a date, one after it


def test_layout_problems_are_named():
    px = layout.PX_PER_MM
    found = {"docWidth": 700, "blocks": [],
             "tables": [{"anchor": "table-5-3", "label": "表5.3", "width": 190 * px, "avail": 174 * px, "landscape": False},
                        {"anchor": "table-5-1", "label": "表5.1", "width": 200 * px, "avail": 174 * px, "landscape": True},
                        {"anchor": "table-5-2", "label": "表5.2", "width": 280 * px, "avail": 174 * px, "landscape": True}],
             "headers": [{"anchor": "table-2-1", "label": "表2.1", "text": "聚类数", "lines": ["聚", "类", "数"]},
                         {"anchor": "table-2-1", "label": "表2.1", "text": "p", "lines": ["p"]}]}
    probs = layout.problems(found)
    assert any("表5.3 is 16 mm wider than the text width" in p for p in probs)
    assert not any("表5.1" in p for p in probs)                       # fits its landscape page
    assert any("表5.2" in p and "landscape" in p for p in probs)
    assert any("one character on a line (聚 / 类 / 数)" in p for p in probs)
    assert layout.too_wide(found) == ["table-5-3", "table-5-1", "table-5-2"]


def test_a_chapter_opening_on_a_near_empty_page_is_found():
    page = layout.TEXT_HEIGHT_MM * layout.PX_PER_MM
    blocks = [{"anchor": "chapter-6", "chapter": "c6", "top": 0}, {"anchor": "table-6-1", "chapter": "c6", "top": 0.2 * page},
              {"anchor": "chapter-5", "chapter": "c5", "top": 5 * page}, {"anchor": "table-5-1", "chapter": "c5", "top": 5.7 * page}]
    out = layout.empty_openings(blocks, {"chapter-6": 30, "table-6-1": 31, "chapter-5": 25, "table-5-1": 26})
    assert out == ["layout: chapter 6 opens on a page it fills only 20% of (table-6-1 moved to the next page)"]
    assert layout.empty_openings(blocks, {"chapter-6": 30, "table-6-1": 30, "chapter-5": 25, "table-5-1": 25}) == []


def test_a_landscape_table_that_opens_its_chapter_takes_the_title_along():
    page = ('<section class="chapter" id="chapter-section-5">\n<h1 class="chapter-title" id="chapter-5">5 X</h1>\n'
            '<div class="prose"><p>intro</p></div>\n<div class="study-table" id="table-5-1"><table></table></div>\n'
            '<div class="study-table long" id="table-5-2"></div></section>')
    out = layout.landscape(page, ["table-5-1", "table-5-2"])
    assert '<div class="landscape-lead"><h1 class="chapter-title" id="chapter-5">' in out
    assert '<div class="study-table landscape" id="table-5-1">' in out and 'class="study-table long landscape" id="table-5-2"' in out
    assert layout.landscape(out, ["table-5-1", "table-5-2"]) == out
    # a landscape table after a section heading leaves the chapter's title where it is
    later = page.replace('<div class="prose">', '<h2 id="section-5-1">5.1</h2><div class="prose">')
    assert "landscape-lead" not in layout.landscape(later, ["table-5-1"])


def test_chromium_measures_tables_and_headers(tmp_path):
    """In print layout at the A4 text width: a table of fourteen unbreakable intervals is too wide; a Chinese header in
    a squeezed column breaks one character per line as Chromium breaks Chinese by default, and between words with
    typeset.words and report.css (keep-all)."""
    css = (report.TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
    wide = "".join(f"<td class='num'>{typeset.mark('<i>[−123.45, +678.90]</i>', 'en')}</td>" for _ in range(14))
    header = "平均业务办理时间各网点所需窗口数"
    filler = "<td class='num' style='white-space: nowrap'>" + "9" * 150 + "</td>"

    def table(anchor, head_html, style=""):
        return (f"<div class='study-table' id='{anchor}'><table class='study'><caption><span class='label'>{anchor}</span>"
                f"</caption><thead><tr><th class='text' style='{style}'>{head_html}</th><th class='num'>n</th></tr></thead>"
                f"<tbody><tr><td class='text'>x</td>{filler}</tr></tbody></table></div>")

    body = (f"<div class='study-table' id='table-wide'><table class='study'><caption><span class='label'>wide</span></caption>"
            f"<tbody><tr>{wide}</tr></tbody></table></div>"
            + table("table-default", header, "word-break: normal")
            + table("table-words", typeset.words(header)))
    path = tmp_path / "p.html"
    path.write_text(f"<!DOCTYPE html><html lang='zh-Hans'><head><meta charset='utf-8'><style>{css}</style></head><body><main>"
                    f"{body}</main></body></html>", encoding="utf-8")
    with report.HeadlessChromium() as browser:
        browser.load(path)
        found = layout.measure(browser)
    assert "table-wide" in layout.too_wide(found)
    lines = {h["anchor"]: h["lines"] for h in found["headers"] if h["text"] != "n"}
    assert any(len(line) == 1 for line in lines["table-default"]), lines
    assert all(len(line) >= 2 for line in lines["table-words"]) and len(lines["table-words"]) > 1, lines
    probs = layout.problems(found)
    assert any("table-default" in p and "one character" in p for p in probs)
    assert not any("table-words" in p and "one character" in p for p in probs)


def test_a_tall_table_may_break_inside_its_rows():
    """A measures table listing fifty pilot branches (a generated study) was kept whole and left its chapter's first
    page 12% full: a table taller than layout.TALL of a page is marked to break where the page ends."""
    page_px = layout.TEXT_HEIGHT_MM * layout.PX_PER_MM
    found = {"tables": [{"anchor": "table-4-1", "height": 0.8 * page_px}, {"anchor": "table-4-2", "height": 0.2 * page_px}]}
    assert layout.too_tall(found) == ["table-4-1"]
    out = layout.tall('<div class="study-table" id="table-4-1"></div><div class="study-table" id="table-4-2"></div>', ["table-4-1"])
    assert '<div class="study-table tall" id="table-4-1">' in out and '<div class="study-table" id="table-4-2">' in out
    assert layout.tall(out, ["table-4-1"]) == out
