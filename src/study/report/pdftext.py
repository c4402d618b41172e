"""The PDF's text layer: what a reader gets when searching, selecting or copying text in report.pdf.

Chromium (Skia) writes, for every font of the PDF, a ``/ToUnicode`` map from the glyphs drawn to the
characters they stand for. Skia builds it from the font's character map and, when several characters
share one glyph, keeps the *lowest* code point (``SkTypeface_FreeType::getGlyphToUnicodeMap``: "use
the first character that maps to this glyphID"). In Noto Sans CJK SC the CJK radicals share their
glyphs with the ideographs (U+2EDA ⻚ and U+9875 页, U+2F3E ⼾ and U+6237 户, U+2F00 ⼀ and U+4E00 一),
and the figure dash with the en dash, so the report's 页、户、一、网、行 … and "0–100" came out of the PDF as
radicals and figure dashes: a reader searching the Chinese PDF for 客户 found nothing (1,672 characters
of the 2025Q2 sample report). Poppler's pdftotext folds some of them back, pypdf and most PDF viewers
do not.

:func:`repair` rewrites those maps after printing, so the PDF itself carries the right characters:
each code point of :data:`EQUIVALENTS` is replaced by the character that the same glyph draws in the
running text (the unified ideograph; the en dash; the letters of a ligature). The rewritten maps are
appended as an incremental update (PDF 1.7 §7.5.6): the printed bytes stay as they were, and every
reader takes the new maps. The table is read from Noto Sans CJK SC's character map (the report's
font; ``tests/test_pdftext.py`` re-derives it from the installed font and compares).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

#: CJK Radicals Supplement and Kangxi Radicals drawn with an ideograph's glyph in Noto Sans CJK SC, and the
#: ideograph (the SC form: ⼾ is drawn, and meant, as 户, not NFKC's 戶).
_RADICALS = ("⺂⺃⺅⺇⺉⺋⺍⺏⺐⺒⺓⺔⺕⺖⺘⺙⺛⺞⺟⺠⺡⺣⺤⺦⺨⺩⺭⺮⺯⺰⺱⺳⺹⺺⺽⺾⻂⻅⻆⻇⻈⻉⻊⻋⻌⻐⻑⻒⻓⻔"
             "⻕⻖⻘⻙⻚⻛⻜⻝⻞⻟⻠⻡⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻮⻯⻰⻱⻲⻳⼀⼁⼂⼃⼄⼅⼆⼇⼈⼉⼊⼋⼌⼍⼎⼏⼐⼑⼒⼓⼔"
             "⼕⼖⼗⼘⼙⼚⼛⼜⼝⼞⼟⼠⼡⼢⼣⼤⼥⼦⼧⼨⼩⼫⼬⼭⼮⼯⼰⼱⼲⼴⼵⼶⼷⼸⼺⼻⼼⼽⼾⼿⽀⽁⽂⽃⽄⽅⽆⽇⽈⽉"
             "⽊⽋⽌⽍⽎⽏⽐⽑⽒⽓⽔⽕⽖⽗⽘⽙⽚⽛⽜⽝⽞⽟⽠⽡⽢⽣⽤⽥⽦⽧⽨⽩⽪⽫⽬⽭⽮⽯⽰⽱⽲⽳⽴⽵⽶⽷⽸⽹⽺⽻"
             "⽼⽽⽿⾀⾁⾂⾃⾄⾅⾆⾇⾈⾉⾊⾋⾌⾍⾎⾏⾐⾑⾒⾔⾕⾖⾗⾘⾙⾚⾛⾜⾝⾞⾟⾠⾡⾢⾣⾤⾥⾦⾨⾩⾪⾫⾬⾭⾮⾯⾰"
             "⾱⾲⾳⾴⾵⾶⾸⾹⾺⾼⾽⾾⾿⿀⿂⿃⿄⿅⿆⿇⿈⿉⿊⿋⿌⿍⿎⿏⿑⿒⿓⿕")
_IDEOGRAPHS = ("乛乚亻𠘨刂㔾𭕄尣尢巳幺彑彐忄扌攵旡歺母民氵灬爫丬犭𤣩礻𥫗糹纟罓㓁耂肀𦥑艹衤见角𧢲讠贝𧾷车辶钅長镸长门"
               "𨸏阝青韦页风飞食𩙿飠饣𩠐马骨鬼鱼鸟卤麦黄黾斉齐齿竜龙龜亀龟一丨丶丿乙亅二亠人儿入八冂冖冫几凵刀力勹匕"
               "匚匸十卜卩厂厶又口囗土士夂夊夕大女子宀寸小尸屮山巛工己巾干广廴廾弋弓彡彳心戈户手支攴文斗斤方无日曰月"
               "木欠止歹殳毋比毛氏气水火爪父爻爿片牙牛犬玄玉瓜瓦甘生用田疋疒癶白皮皿目矛矢石示禸禾穴立竹米糸缶网羊羽"
               "老而耳聿肉臣自至臼舌舛舟艮色艸虍虫血行衣襾見言谷豆豕豸貝赤走足身車辛辰辵邑酉釆里金門阜隶隹雨靑非面革"
               "韋韭音頁風飛首香馬高髟鬥鬯鬲魚鳥鹵鹿麥麻黃黍黑黹黽鼎鼓鼠齊齒龍龠")
assert len(_RADICALS) == len(_IDEOGRAPHS)

#: Code point Skia writes -> the text the glyph stands for in the report.
EQUIVALENTS: dict[str, str] = {
    **dict(zip(_RADICALS, _IDEOGRAPHS)),
    "\u2012": "\u2013",          # figure dash -> en dash ("0–100", "2025Q1–2025Q2"); the toolkit writes no figure dash
    "\u2329": "\u3008", "\u232a": "\u3009",   # deprecated angle brackets -> CJK angle brackets 〈〉
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
}

#: Characters a reader should never get from the report's text layer (a search for the word would miss it).
MISREAD = re.compile("[\u2e80-\u2fdf\u2012\ufb00-\ufb06]")

_CMAP_PAIR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
_CMAP_RANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(<[0-9A-Fa-f]+>|\[[^\]]*\])")
_BLOCK = re.compile(rb"\d+\s+begin(bfchar|bfrange)(.*?)end\1", re.S)


def _utf16(hexstr: bytes) -> str:
    return bytes.fromhex(hexstr.decode("ascii")).decode("utf-16-be", "surrogatepass")


def _hex(text: str) -> bytes:
    return text.encode("utf-16-be").hex().upper().encode("ascii")


def _fixed(text: str) -> str:
    return "".join(EQUIVALENTS.get(ch, ch) for ch in text)


def repair_cmap(cmap: bytes) -> bytes | None:
    """A ToUnicode CMap with every mapping to a code point of :data:`EQUIVALENTS` replaced; ``None`` when
    nothing needs replacing. Ranges are expanded to single mappings (a Type 3 font has at most 256)."""
    pairs: list[tuple[bytes, str]] = []
    width = None
    for kind, body in _BLOCK.findall(cmap):
        if kind == b"bfchar":
            for src, dst in _CMAP_PAIR.findall(body):
                pairs.append((src, _utf16(dst)))
        else:
            for lo, hi, dst in _CMAP_RANGE.findall(body):
                n_lo, n_hi, digits = int(lo, 16), int(hi, 16), len(lo)
                if dst.startswith(b"["):
                    targets = [_utf16(t) for t in re.findall(rb"<([0-9A-Fa-f]+)>", dst)]
                else:
                    first = bytes.fromhex(dst[1:-1].decode("ascii"))
                    # the last byte increments along the range (PDF 1.7 §9.10.3)
                    targets = [(first[:-1] + bytes([first[-1] + i])).decode("utf-16-be", "surrogatepass")
                               if first[-1] + i <= 255 else None for i in range(n_hi - n_lo + 1)]
                for i, t in enumerate(targets[: n_hi - n_lo + 1]):
                    if t is not None:
                        pairs.append((f"{n_lo + i:0{digits}X}".encode("ascii"), t))
        width = width or (len(pairs[0][0]) if pairs else None)
    if not any(MISREAD.search(t) for _, t in pairs):
        return None
    head_end = cmap.find(b"endcodespacerange")
    tail_start = cmap.rfind(b"endcmap")
    if head_end < 0 or tail_start < 0:
        return None
    head = cmap[: head_end + len(b"endcodespacerange")]
    lines = [head]
    for i in range(0, len(pairs), 100):   # at most 100 mappings per block
        chunk = pairs[i:i + 100]
        lines.append(b"%d beginbfchar" % len(chunk))
        lines.extend(b"<" + src.upper() + b"> <" + _hex(_fixed(t)) + b">" for src, t in chunk)
        lines.append(b"endbfchar")
    return b"\n".join(lines) + b"\n" + cmap[tail_start:]


_TRAILER = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref\s*(\d+)\s*%%EOF\s*$", re.S)


def repair(pdf_path: Path | str) -> int:
    """Rewrite the ToUnicode maps of a PDF printed by Chromium in place (see the module docstring);
    returns how many maps were rewritten (0: the file is left untouched).

    Only a PDF with a classic cross-reference table and uncompressed font dictionaries (what Chromium
    writes) is updated; another structure is left as it is."""
    path = Path(pdf_path)
    raw = path.read_bytes()
    trailer = _TRAILER.search(raw[-4096:])
    if trailer is None:
        return 0
    ids = sorted({int(m) for m in re.findall(rb"/ToUnicode\s+(\d+)\s+0\s+R", raw)})
    if not ids:
        return 0
    import pypdf

    reader = pypdf.PdfReader(path)
    updates: dict[int, bytes] = {}
    for idnum in ids:
        try:
            data = reader.get_object(idnum).get_data()
        except Exception:  # an unreadable map is left as printed
            continue
        fixed = repair_cmap(data)
        if fixed is not None:
            updates[idnum] = fixed
    if not updates:
        return 0
    fields = trailer.group(1)
    size = int(re.search(rb"/Size\s+(\d+)", fields).group(1))
    keep = b"".join(m.group(0) + b"\n" for m in re.finditer(rb"/(?:Root|Info)\s+\d+\s+\d+\s+R|/ID\s*\[[^\]]*\]", fields))
    out = bytearray(raw if raw.endswith(b"\n") else raw + b"\n")
    offsets = {}
    for idnum, data in sorted(updates.items()):
        body = zlib.compress(data, 9)
        offsets[idnum] = len(out)
        out += b"%d 0 obj\n<</Filter /FlateDecode /Length %d>> stream\n" % (idnum, len(body)) + body + b"\nendstream\nendobj\n"
    xref_at = len(out)
    out += b"xref\n"
    for idnum in sorted(offsets):   # one subsection per object: simple and valid
        out += b"%d 1\n%010d 00000 n\r\n" % (idnum, offsets[idnum])
    out += b"trailer\n<</Size %d\n" % size + keep + b"/Prev %s>>\nstartxref\n%d\n%%%%EOF\n" % (trailer.group(2), xref_at)
    tmp = path.with_name(path.name + ".text-tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(path)
    return len(updates)


def pages_text(pdf_path: Path | str) -> list[str]:
    """The text of each page as a PDF reader extracts it (pypdf), without any mapping of ours: what a
    reader's search sees."""
    import pypdf

    reader = pypdf.PdfReader(pdf_path)
    return [page.extract_text() or "" for page in reader.pages]
