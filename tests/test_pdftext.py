"""The PDF's text layer (issue 21): searching or copying Chinese text in report.zh.pdf gives the characters
written, not the CJK radicals Chromium's ToUnicode maps chose (⻚ for 页, ⼾ for 户), checked with two independent
extractors (pypdf and poppler's pdftotext)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from study.report import pdftext
from study.report import render as report

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def _font_equivalents(path: str, face: str = "Noto Sans CJK SC") -> dict[str, str]:
    """From the font's character map: the lowest code point of a glyph that is a radical, and the ideograph the
    same glyph draws (what Skia writes, and what the text meant)."""
    from fontTools.ttLib import TTCollection

    for font in TTCollection(path, lazy=True).fonts:
        if font["name"].getDebugName(1) == face:
            break
    else:  # pragma: no cover
        pytest.fail(f"{face} not in {path}")
    by_glyph: dict[str, list[int]] = {}
    for cp, glyph in font.getBestCmap().items():
        by_glyph.setdefault(glyph, []).append(cp)
    out = {}
    for cps in by_glyph.values():
        low = min(cps)
        if 0x2E80 <= low <= 0x2FDF:
            uni = [c for c in cps if 0x3400 <= c <= 0x4DBF or 0x4E00 <= c <= 0x9FFF or 0x20000 <= c <= 0x3FFFF]
            if uni:
                out[chr(low)] = chr(min(uni, key=lambda c: (c > 0xFFFF, c < 0x4E00, c)))
    return out


def test_the_table_is_the_report_fonts_own():
    """Re-derived from the installed Noto Sans CJK SC: every radical that shares a glyph with an ideograph maps to
    that ideograph (⼾ → 户 in the SC face, where NFKC would give the traditional 戶)."""
    pytest.importorskip("fontTools")
    found = _font_equivalents(FONT)
    table = {k: v for k, v in pdftext.EQUIVALENTS.items() if "\u2e80" <= k <= "\u2fdf"}
    assert table == found
    assert table["⻚"] == "页" and table["⼾"] == "户" and table["⼀"] == "一"


def _cmap(body: bytes) -> bytes:
    return (b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CMapName /Adobe-Identity-UCS def\n"
            b"1 begincodespacerange\n<00> <FF>\nendcodespacerange\n" + body
            + b"\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend")


def _mapping(cmap: bytes) -> dict[str, str]:
    import re

    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<([0-9A-F]+)> <([0-9A-F]+)>", block):
            out[src.decode()] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    return out


def test_a_cmap_is_rewritten_entry_by_entry_and_range_by_range():
    cmap = _cmap(b"3 beginbfchar\n<01> <2EDA>\n<02> <0041>\n<03> <FB01>\nendbfchar\n"
                 b"2 beginbfrange\n<10> <12> <2F00>\n<20> <21> [<2012> <0042>]\nendbfrange")
    fixed = pdftext.repair_cmap(cmap)
    assert _mapping(fixed) == {"01": "页", "02": "A", "03": "fi", "10": "一", "11": "丨", "12": "丶", "20": "–", "21": "B"}
    assert fixed.startswith(cmap[:cmap.index(b"endcodespacerange")]) and fixed.rstrip().endswith(b"end")
    # a map with nothing to mend is left alone
    assert pdftext.repair_cmap(_cmap(b"1 beginbfchar\n<01> <9875>\nendbfchar")) is None


def test_repair_appends_an_update_that_every_reader_takes(tmp_path):
    """A hand-made PDF whose font maps its glyphs to ⻚ and ⼾ is repaired in place: the printed bytes stay, the
    update follows, pypdf reads 页 and 户."""
    pypdf = pytest.importorskip("pypdf")
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(200, 200)
    tounicode = DecodedStreamObject()
    tounicode.set_data(_cmap(b"2 beginbfchar\n<41> <2EDA>\n<42> <2F3E>\nendbfchar"))
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica"),
                             NameObject("/ToUnicode"): writer._add_object(tounicode)})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    content = DecodedStreamObject()
    content.set_data(b"BT /F1 24 Tf 20 100 Td (AB) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(content)
    path = tmp_path / "t.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    before = path.read_bytes()
    assert "⻚" in pdftext.pages_text(path)[0]
    assert pdftext.repair(path) == 1
    after = path.read_bytes()
    assert after.startswith(before.rstrip(b"\n")) and len(after) > len(before)
    assert pdftext.pages_text(path)[0].strip() == "页户"
    assert pdftext.repair(path) == 0  # idempotent: nothing left to mend


def test_chromium_pdf_reads_back_the_characters_written(tmp_path):
    """Printed by Chromium with the report's style sheet and font: pypdf and pdftotext both read 客户、页、一、行 and
    the en dash of "0–100" as written, and no radical or figure dash."""
    css = (report.TEMPLATES_DIR / "report.css").read_text(encoding="utf-8")
    text = "客户满意度（0–100）第一页 银行网点 比较 二 方法 非常 用户 自助设备 长期 ﬁnal"
    page = tmp_path / "p.html"
    page.write_text(f"<!DOCTYPE html><html lang='zh-Hans'><head><meta charset='utf-8'><style>{css}</style></head>"
                    f"<body><p>{text}</p></body></html>", encoding="utf-8")
    report.print_pdf(page, tmp_path / "p.pdf")
    words = text.replace("ﬁnal", "final").split()
    got = "".join(pdftext.pages_text(tmp_path / "p.pdf"))
    assert not pdftext.MISREAD.search(got), sorted(set(pdftext.MISREAD.findall(got)))
    for w in words:
        assert w in got, w
    if shutil.which("pdftotext"):
        poppler = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "p.pdf"), "-"], capture_output=True,
                                 text=True, check=True).stdout
        assert not pdftext.MISREAD.search(poppler)
        for w in words:
            assert w in poppler, w
