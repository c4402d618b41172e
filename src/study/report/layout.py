"""The printed report's layout, checked as a reviewer sees it: tables that do not fit the A4 text width (Chromium then
shrinks every page), headers set one character per line, a chapter that opens on a page it leaves mostly empty.

The checks run in the browser that prints the report (:class:`study.report.render.HeadlessChromium`): the page is laid
out for print at the text width of an A4 page (:data:`TEXT_WIDTH_MM`) and measured with a script sent over DevTools
(the report itself runs none); the page of each chapter, section, table and figure comes from the printed PDF's named
destinations. Each problem becomes a note of the render (render.json), which the tests fail on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: A4 width less report.css's left and right page margins (18 mm each), and height less the top and bottom margins;
#: the same of a landscape page (report.css ``@page landscape``), where a table too wide for portrait is printed.
TEXT_WIDTH_MM = 210 - 18 - 18
TEXT_HEIGHT_MM = 297 - 20 - 18
LANDSCAPE_WIDTH_MM = 297 - 18 - 18
PX_PER_MM = 96 / 25.4
#: A chapter's first page is "mostly empty" when what it holds before the chapter's first block on a later page takes
#: less than this share of the page.
MOSTLY_EMPTY = 0.5

# Measured in print layout: every numbered table's width against the width it may take; every Chinese header's lines
# (a line holding one Han character of a longer header is a header set one character per line); each chapter's top,
# and the top of every anchored block (sections, tables, figures) in document order.
_PROBE = r"""
(function () {
  function lines(el) {
    var out = [], walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT), node, top = null, cur = '';
    while ((node = walker.nextNode())) {
      for (var i = 0; i < node.data.length; i++) {
        var ch = node.data[i];
        if (!ch.trim()) continue;
        var r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
        var rect = r.getClientRects()[0]; if (!rect) continue;
        var y = Math.round(rect.top);
        if (top !== null && Math.abs(y - top) > 3) { out.push(cur); cur = ''; }
        top = y; cur += ch;
      }
    }
    if (cur) out.push(cur);
    return out;
  }
  var res = {docWidth: document.documentElement.scrollWidth, tables: [], headers: [], blocks: []};
  document.querySelectorAll('div.study-table').forEach(function (div) {
    var t = div.querySelector('table'), lab = div.querySelector('caption .label');
    res.tables.push({anchor: div.id, label: lab ? lab.textContent : '', width: t.scrollWidth,
                     avail: div.parentElement.getBoundingClientRect().width, height: div.getBoundingClientRect().height,
                     landscape: div.classList.contains('landscape')});
    if (document.documentElement.lang.indexOf('zh') === 0) {
      div.querySelectorAll('thead th').forEach(function (th) {
        res.headers.push({anchor: div.id, label: lab ? lab.textContent : '', text: th.textContent, lines: lines(th)});
      });
    }
  });
  document.querySelectorAll('main [id]').forEach(function (el) {
    if (el.tagName !== 'SECTION' && /^(chapter|section|table|figure)-/.test(el.id)) {
      var sec = el.closest('section.chapter');
      res.blocks.push({anchor: el.id, chapter: sec ? sec.id : '', top: el.getBoundingClientRect().top + window.scrollY});
    }
  });
  return JSON.stringify(res);
})()
"""

_HAN = ("\u3400", "\u9fff")


def _han(ch: str) -> bool:
    return _HAN[0] <= ch <= _HAN[1] or "\uf900" <= ch <= "\ufaff"


def measure(browser) -> dict[str, Any]:
    """Lay the loaded page out for print at the A4 text width and measure it (see :data:`_PROBE`)."""
    width = round(TEXT_WIDTH_MM * PX_PER_MM)
    browser.call("Emulation.setEmulatedMedia", {"media": "print"}, session=True)
    browser.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": round(TEXT_HEIGHT_MM * PX_PER_MM),
                                                        "deviceScaleFactor": 1, "mobile": False}, session=True)
    try:
        return json.loads(browser.evaluate(_PROBE))
    finally:
        browser.call("Emulation.clearDeviceMetricsOverride", {}, session=True)
        browser.call("Emulation.setEmulatedMedia", {"media": ""}, session=True)


def problems(found: dict[str, Any], pages: dict[str, int] | None = None) -> list[str]:
    """The layout problems in a measurement (:func:`measure`) and the pages of the anchors (PDF named destinations)."""
    out = []
    text_width = TEXT_WIDTH_MM * PX_PER_MM
    if found["docWidth"] > text_width + 1 and not any(t.get("landscape") for t in found["tables"]):
        out.append(f"layout: the page is {(found['docWidth'] - text_width) / PX_PER_MM:.0f} mm wider than the A4 text "
                   "width, so the PDF is shrunk to fit")
    for t in found["tables"]:
        # measured at the portrait width: a wider table is at its narrowest, which a landscape page must hold
        room = LANDSCAPE_WIDTH_MM * PX_PER_MM if t.get("landscape") else min(t["avail"], text_width)
        if t["width"] > room + 1:
            out.append(f"layout: {t['label'] or t['anchor']} is {(t['width'] - room) / PX_PER_MM:.0f} mm wider than the text "
                       "width" + (" of a landscape page" if t.get("landscape") else ""))
    for h in found["headers"]:
        han = [c for c in h["text"] if _han(c)]
        single = [ln for ln in h["lines"] if len(ln) == 1 and _han(ln)]
        if len(han) > 1 and single:
            out.append(f"layout: a header of {h['label'] or h['anchor']} is set with one character on a line "
                       f"({' / '.join(h['lines'])})")
    if pages:
        out += empty_openings(found["blocks"], pages)
    return out


def empty_openings(blocks: list[dict], pages: dict[str, int]) -> list[str]:
    """Chapters whose first page holds less than :data:`MOSTLY_EMPTY` of a page: the chapter's first block on a later
    page (a table or figure that did not fit) starts that little below the chapter's title."""
    out = []
    page_px = TEXT_HEIGHT_MM * PX_PER_MM
    chapters: dict[str, list[dict]] = {}
    for b in blocks:
        chapters.setdefault(b["chapter"], []).append(b)
    for blocks_ in chapters.values():
        head = next((b for b in blocks_ if b["anchor"].startswith("chapter-")), None)
        if head is None or head["anchor"] not in pages:
            continue
        first_page = pages[head["anchor"]]
        later = next((b for b in blocks_ if b is not head and b["anchor"] in pages and pages[b["anchor"]] > first_page), None)
        if later is None:
            continue
        # everything on the first page lies between the title and the first block moved to the next page
        used = later["top"] - head["top"]
        if used < MOSTLY_EMPTY * page_px and not any(b is not head and b["anchor"] in pages and pages[b["anchor"]] == first_page
                                                    and b["top"] > later["top"] for b in blocks_):
            out.append(f"layout: {head['anchor'].replace('chapter-', 'chapter ')} opens on a page it fills only "
                       f"{used / page_px:.0%} of ({later['anchor']} moved to the next page)")
    return out


def too_wide(found: dict[str, Any]) -> list[str]:
    """The anchors of the tables wider than the portrait text width: they are printed on landscape pages."""
    text_width = TEXT_WIDTH_MM * PX_PER_MM
    return [t["anchor"] for t in found["tables"] if t["anchor"] and t["width"] > min(t["avail"], text_width) + 1]


#: A table taller than this share of a page may break between and inside its rows (class ``tall``, report.css): kept
#: whole, it left the page before it mostly empty (a measures table listing fifty pilot branches).
TALL = 0.55


def too_tall(found: dict[str, Any]) -> list[str]:
    """The anchors of the tables taller than :data:`TALL` of a page (measured at the portrait text width)."""
    page = TEXT_HEIGHT_MM * PX_PER_MM
    return [t["anchor"] for t in found["tables"] if t["anchor"] and t.get("height", 0) > TALL * page]


def tall(page: str, anchors) -> str:
    """The report page with the tables ``anchors`` marked as tall (class ``tall``: they may break inside their rows)."""
    def add(m: re.Match) -> str:
        return m.group(0) if " tall" in m.group(1) else f'<div class="{m.group(1)} tall" id="{m.group(2)}">'

    for a in anchors:
        page = re.sub(rf'<div class="(study-table[^"]*)" id="({re.escape(a)})">', add, page, count=1)
    return page


def landscape(page: str, anchors) -> str:
    """The report page with the tables ``anchors`` marked for a landscape page (class ``landscape``, report.css)."""
    def add(m: re.Match) -> str:
        return m.group(0) if "landscape" in m.group(1) else f'<div class="{m.group(1)} landscape" id="{m.group(2)}">'

    for a in anchors:
        page = re.sub(rf'<div class="(study-table[^"]*)" id="({re.escape(a)})">', add, page, count=1)
        page = _landscape_lead(page, a)
    return page


def _landscape_lead(page: str, anchor: str) -> str:
    """When a landscape table is the first block of its chapter (only prose between the chapter's title and it), the
    title and that prose go on the landscape page too: else the chapter opens on a portrait page holding a few lines."""
    at = page.find(f'id="{anchor}"')
    table = page.rfind("<div ", 0, at)
    head = page.rfind('<h1 class="chapter-title"', 0, table)
    if at < 0 or head < 0 or page.rfind('<section class="chapter', 0, table) > head:
        return page
    between = page[head:table]
    if 'class="landscape-lead"' in page[max(0, head - 40):head] or re.search(r'<div class="study-table|<figure|<h2', between):
        return page
    return page[:head] + '<div class="landscape-lead">' + between + "</div>\n" + page[table:]


def check(browser, pdf_path: Path, pages_of) -> list[str]:
    """Measure the loaded page and return its layout problems; ``pages_of(pdf_path)`` gives the named destinations."""
    found = measure(browser)
    return problems(found, pages_of(pdf_path))
