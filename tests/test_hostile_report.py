"""Hostile text in study.yml and the data stays text in the report (issue 11, first bullet).

One render of a study whose every label carries markup - a study name that closes ``<title>`` and
opens a script, Markdown bold and links, a TeX formula, ``<img onerror>``, ``<svg onload>`` - and
whose benchmark names its banks the same way: the report's HTML, loaded in headless Chromium,
opens no dialog and holds no script, shows the strings as typed, passes the allow-list, and the
PDF prints. Then unit tests of the allow-list (:func:`study.report.render.html_problems`), of the one
place where text becomes HTML (:func:`study.report.present.text_html`) and of figure labels.
"""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from study.data import config, validate
from study.data.config import DEFAULT_STUDY_FILE
from study.errors import StudyError
from study.report import figures, present
from study.report import render as report
from tests.conftest import unmarked
from tests.test_report_e2e import QUARTERS, small_sample

TITLE = "</title><script>alert(1)</script>"
BOLD = "**bold**"
LINK = "[link](http://evil.example)"
MATH = r"$\frac{1}{0}$"
IMG = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(1)>"
PAYLOADS = [BOLD, LINK, MATH, IMG, SVG, TITLE]


def _hostile_study(path) -> dict:
    """The shipped study.yml with a payload appended to every label a reader sees."""
    s = yaml.safe_load(DEFAULT_STUDY_FILE.read_text(encoding="utf-8"))
    k = iter(range(10_000))

    def tag(text):
        return f"{text} {PAYLOADS[next(k) % len(PAYLOADS)]}"

    s["name"] = f"Study {TITLE}"
    s["organisation"] = f"Org {IMG} {BOLD}"
    for group in ("dimensions", "items", "segments", "channels", "ticket_channels", "business_types", "sqi", "targets"):
        entries = s.get(group)
        if isinstance(entries, dict):
            entries = entries.values()
        for e in entries or []:
            if isinstance(e, dict) and "label" in e:
                e["label"] = tag(e["label"])
    for key in ("overall_satisfaction", "recommend", "complaint"):
        for holder in (s, s.get("outcomes") or {}):
            if isinstance(holder.get(key), dict) and "label" in holder[key]:
                holder[key]["label"] = tag(holder[key]["label"])
    for b in s["branches"]:
        b["name"] = tag(b["name"])
    for m in s["measures"]:
        m["name"] = f"Smart queue {BOLD} {SVG}"
        m["description"] = f"Desc {LINK} {MATH} {IMG}"
    for m in s["benchmark"]["metrics"]:
        m["label"] = tag(m["label"])
    s["benchmark"]["our_bank"] = f"Our bank {SVG}"
    path.write_text(yaml.safe_dump(s, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return s


BANKS = {"Our bank": f"Our bank {SVG}", "Bank A": f"Bank A {LINK}", "Bank B": f"Bank B {IMG}", "Bank C": f"Bank C {MATH}"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if report.find_chromium() is None:  # pragma: no cover - make setup installs it
        pytest.fail("Chromium is needed: run `make setup`")
    root = tmp_path_factory.mktemp("hostile")
    study_file = root / "study.yml"
    _hostile_study(study_file)
    data_dir = small_sample(root / "data", every=16)
    for q in QUARTERS:
        bench = data_dir / "raw" / q / "benchmark.csv"
        df = pd.read_csv(bench, dtype=str)
        df["bank"] = df["bank"].map(BANKS)
        df.to_csv(bench, index=False)
    study = config.load_study(study_file)
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_PSEUDONYM_KEY", "test-key-not-secret")
    try:
        for q in QUARTERS:
            validate.prepare_quarter(study, study_file, data_dir, q)
        res = report.render_report(QUARTERS[1], QUARTERS[0], study_file=study_file, data_dir=data_dir,
                                   out_dir=root / "reports", parameters={"n_boot": 50}, pdf=True)
    finally:
        mp.undo()
    return res, unmarked(res.html.read_text(encoding="utf-8"))


def _visible_text(page: str) -> str:
    body = re.sub(r"<(style|title)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_hostile_html_opens_no_dialog_and_runs_no_script(hostile):
    res, page = hostile
    with report.HeadlessChromium() as browser:
        browser.load(res.html)  # raises if the page opened a dialog
        assert browser.dialogs == []
        assert browser.evaluate("document.querySelectorAll('script, iframe, object, embed, form, base').length") == 0
        assert browser.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
        assert browser.evaluate("document.querySelectorAll('a[href^=\"http\"]').length") == 0
        assert browser.evaluate("document.title").startswith("Study " + TITLE)  # the title, as typed
    assert "<script" not in page.lower()
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src &#39;none&#39;" in page


def test_hostile_strings_show_as_typed(hostile):
    _, page = hostile
    text = _visible_text(page)
    for s in (TITLE, IMG, SVG, LINK, BOLD, MATH, f"Bank A {LINK}", f"Bank B {IMG}", f"Smart queue {BOLD} {SVG}",
              f"Desc {LINK} {MATH} {IMG}", f"Org {IMG} {BOLD}"):
        assert s in text, s
    # headings, captions, tables and figures never turn a label into markup (prose: the next test)
    outside_prose = re.sub(r'<div class="prose">.*?</div>', "", page, flags=re.S)
    assert "<strong>bold</strong>" not in outside_prose
    assert r'alt="\frac{1}{0}"' not in outside_prose


def test_hostile_labels_in_prose_stay_literal(hostile):
    _, page = hostile
    assert "<strong>bold</strong>" not in page
    assert r'alt="\frac{1}{0}"' not in page


def test_hostile_report_passes_the_allow_list_and_prints(hostile):
    res, page = hostile
    report.assert_self_contained(page)
    assert res.pdf is not None and res.pdf.stat().st_size > 10_000 and (res.pages or 0) >= 10
    flat = re.sub(r"\s+", " ", "\n".join(report.pdf_pages_text(res.pdf)))
    assert "Smart queue **bold** <svg onload=alert(1)>" in flat


# ---------------------------------------------------------------------------------------------
# The allow-list


def _svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


REFUSED = {
    "img onerror": ('<img src=x onerror=alert(1)>', "event attribute onerror"),
    "data: onerror": ('<img src="data:," onerror=alert(1)>', "event attribute onerror"),
    "data: not an image": ('<img src="data:,">', "not an image stored in the file"),
    "meta refresh": ('<meta http-equiv="refresh" content="0;url=http://evil.example">', 'meta http-equiv="refresh"'),
    "base": ('<base href="http://evil.example/">', "<base> element"),
    "iframe srcdoc": ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', "<iframe> element"),
    "form": ('<form action="http://evil.example"><button>go</button></form>', "<form> element"),
    "external link": ('<a href="http://evil.example">x</a>', "link out of the document"),
    "javascript link": ('<a href="javascript:alert(1)">x</a>', "link out of the document"),
    "stylesheet link": ('<link rel="stylesheet" href="http://evil.example/x.css">', "<link> element"),
    "script": ("<script>alert(1)</script>", "<script> element"),
    "inline svg": ("<svg onload=alert(1)></svg>", "<svg> element"),
    "object": ('<object data="x.swf"></object>', "<object> element"),
    "embed": ('<embed src="x.swf">', "<embed> element"),
    "srcset": ('<img src="data:image/png;base64,AAAA" srcset="http://evil.example/a.png 2x">', "attribute srcset"),
    "css url": ('<p style="background:url(http://evil.example/a.png)">x</p>', "style attribute loading"),
    "css import": ("<style>@import 'http://evil.example/a.css';</style>", "style sheet loading"),
    "svg script": (f'<img src="{_svg_uri("<svg><script>alert(1)</script></svg>")}">', "SVG image holds a <script>"),
    "svg foreignObject": (f'<img src="{_svg_uri("<svg><foreignObject><p>x</p></foreignObject></svg>")}">',
                          "<foreignobject>"),
    "svg onload": ('<img src="' + _svg_uri("<svg onload='alert(1)'></svg>") + '">', "event attribute onload"),
    "svg external href": ('<img src="' + _svg_uri("<svg><image href='http://evil.example/a.png'/></svg>") + '">',
                          "SVG image refers to"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_allow_list_refuses(case):
    markup, what = REFUSED[case]
    page = f'<section class="chapter" data-notebook="2.0-current-state.ipynb"><p>ok</p>{markup}</section>'
    with pytest.raises(StudyError, match="refused") as err:
        report.assert_self_contained(page)
    msg = str(err.value)
    assert what in msg, msg
    if case not in ("script",):  # the <script> pre-check names no chapter
        assert "2.0-current-state.ipynb" in msg, msg  # names the chapter it came from


def test_allow_list_accepts_what_the_toolkit_makes():
    present.set_chapter(2)
    fig = figures.bar_ci(pd.DataFrame({"c": ["a", IMG], "v": [1.0, 2.0]}), "c", "v", value_label=MATH)
    parts = [present.table_html(pd.DataFrame({"x": [IMG, present.Md("**b**")]}), TITLE, "Table 2.1", notes=[LINK]),
             present.figure_html(fig, SVG, "Figure 2.1"),
             present.text_html(present.md("See [the table](#table-2-1), **{}** and $x^2$.", LINK), inline=False)]
    present.set_chapter(None)
    for part in parts:
        report.check_fragment(part, "test")
    page = report._render_page(dict(lang="en", version="1", date="2025-01-01", title=TITLE, title_zh="", organisation=IMG,
                                    study_name=SVG, subtitle="s", quarter="2025Q2", baseline="2025Q1",
                                    running_head=f'{TITLE} " \\ </style>', title_note=LINK, toc=[], tables=[],
                                    figures=[], chapters=[], css="body{}"))
    report.assert_self_contained(page)
    assert "<title>&lt;/title&gt;&lt;script&gt;" in page and "</style>" in page and page.count("</style>") == 1


def test_check_outputs_names_notebook_and_cell():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x"), nbformat.v4.new_code_cell("y")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/html": f"<p>{IMG}</p>", "text/plain": ""})]
    with pytest.raises(report.UnsafeHTML, match=r"notebook 2\.0-x\.ipynb, cell 2: refused") as err:
        report.check_outputs(nb, "2.0-x.ipynb")
    assert "event attribute onerror" in str(err.value) and "<img src=x onerror=alert(1)>" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Text and figure labels


@pytest.mark.parametrize("payload", PAYLOADS + [r"\(x\)", r"\[y\]", "a\\b", "&amp; &lt;", "1. first", "# heading"])
def test_text_html_literal_and_md_values(payload):
    as_text = lambda h: html.unescape(re.sub(r"<[^>]+>", "", h))  # noqa: E731
    assert as_text(present.text_html(payload)) == payload  # a str is literal
    out = present.text_html(present.md("Value **{}** here", payload))  # a value in a template is literal
    assert as_text(out) == f"Value {' '.join(payload.split())} here"
    assert "<img" not in out and "<a " not in out and "<svg" not in out


def test_markdown_keeps_anchors_only():
    out = present.text_html(present.Md("[in](#table-2-1) [out](http://evil.example) ![i](http://e/x.png) <http://e.x> "
                                       "<b onclick=x>raw</b>"))
    assert '<a href="#table-2-1">in</a>' in out
    assert "http://evil.example" not in out and "<img" not in out and "<b " not in out and "href=\"http" not in out


def test_figures_draw_hostile_labels_as_text():
    import warnings

    labels = PAYLOADS + ["很长的标签" * 30, "$5 and $6 " * 20, "a\\b"]
    d = pd.DataFrame({"dim": labels, "score": np.arange(len(labels)) * 10.0})
    d["lo"], d["hi"] = d["score"] - 2, d["score"] + 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mathtext error, no missing glyph, no collapsed layout
        fig = figures.bar_ci(d, "dim", "score", lo="lo", hi="hi", value_label=MATH, ref=30, ref_label=TITLE)
        out = present.figure_html(fig, MATH, "Figure 1.1")
    report.check_fragment(out, "test")
    assert fig.axes[0].xaxis.label.get_text() == MATH  # drawn as typed (mathtext is off)
    assert max(len(t.get_text()) for t in fig.axes[0].get_yticklabels()) <= figures.MAX_LABEL
