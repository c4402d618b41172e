"""The rendering infrastructure: study.report.present, study.report.figures and study.report.render.

The end-to-end tests render the two throw-away chapter notebooks in tests/data/notebooks
(parameters cell, a table with Chinese labels, a figure with Chinese labels, a formula, prose,
stdout and a warning that must not reach the report) into a temporary folder with papermill,
nbconvert and headless Chromium, and check the HTML and the PDF (its text and page size read with pypdf).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from study.errors import StudyError
from study.report import figures, present
from study.report import render as report
from tests.conftest import unmarked

NB_DIR = Path(__file__).parent / "data" / "notebooks"
HAVE_TOOLS = bool(shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="needs chromium")


# ---------------------------------------------------------------------------------------------
# APA formatting


def test_fmt_p_apa():
    assert present.fmt_p(0.038) == "p = .038"
    assert present.fmt_p(0.0381) == "p = .038"
    assert present.fmt_p(0.0004) == "p < .001"
    assert present.fmt_p(0.001) == "p = .001"
    assert present.fmt_p(0.99999) == "p > .999"
    assert present.fmt_p(0.05) == "p = .050"
    assert present.fmt_p(0.2, prefix=False) == ".200"
    assert present.fmt_p(np.nan) == "p = n/a"
    with pytest.raises(ValueError, match="p value"):
        present.fmt_p(1.5)


def test_fmt_test_welch_example_from_the_issue():
    row = {"t": 2.1347, "df": 37.87, "p": 0.0381, "g": 0.6102, "ci_low": 0.1004, "ci_high": 1.1234}
    assert present.fmt_test(row) == "t(37.9) = 2.13, p = .038, g = 0.61, 95 % CI [0.10, 1.12]"
    assert present.fmt_test(row, md=True) == "*t*(37.9) = 2.13, *p* = .038, *g* = 0.61, 95 % CI [0.10, 1.12]"
    # integer df, negative statistic with a true minus sign, adjusted p chosen explicitly
    row = pd.Series({"statistic": -2.5, "stat_name": "t", "df": 38.0, "p": 0.2, "p_adj": 0.0004, "d": -0.8})
    assert present.fmt_test(row, p="p_adj") == "t(38) = \u22122.50, p < .001, d = \u22120.80"


def test_fmt_test_f_and_chi2():
    assert present.fmt_test({"F": 4.2, "df1": 2, "df2": 117, "p": 0.017, "eta2": 0.067}) == \
        "F(2, 117) = 4.20, p = .017, η² = .07"
    assert present.fmt_test({"chi2": 8.314, "df": 3, "n": 735, "p": 0.04, "V": 0.11}) == \
        "χ²(3, N = 735) = 8.31, p = .040, V = .11"
    with pytest.raises(ValueError, match="no statistic"):
        present.fmt_test({"mean": 3.0})


def test_fmt_numbers():
    assert present.fmt_pct(735 / 800, 2) == "91.88 %"
    assert present.fmt_pct(91.875, 1, proportion=False) == "91.9 %"
    assert present.fmt_num(12345.678, 1) == "12,345.7"
    assert present.fmt_num(-0.5) == "\u22120.50"
    assert present.fmt_num(-0.0001) == "0.00"  # never "-0.00"
    assert present.fmt_num(3, sign=True) == "+3"
    assert present.fmt_int(1234567.0) == "1,234,567"
    assert present.fmt_pp(0.032) == "+3.2 pp"
    assert present.fmt_ci(-0.2, 0.5) == "95 % CI [\u22120.20, 0.50]"
    assert present.fmt_num(None) == present.DASH


# ---------------------------------------------------------------------------------------------
# Tables, numbering, formulas


def test_number_cells_break_only_before_an_interval_or_verdict_or_after_its_comma():
    assert present.keep_together("81.4 % [77.6 %, 84.7 %]") == "81.4\u00a0% [77.6\u00a0%, 84.7\u00a0%]"
    assert present.keep_together("81.4 % (not met)") == "81.4\u00a0% (not\u00a0met)"
    assert present.keep_together("< .001") == "<\u00a0.001"
    assert present.keep_together("[−7.4个百分点, +5.3个百分点]") == "[−7.4个百分点, +5.3个百分点]"


def test_table_html_is_clean_and_formatted():
    df = pd.DataFrame({"dim": ["专业能力", "效率 <b>"], "n": [1204, 98], "share": [0.9188, 0.0123], "p": [0.0004, 0.5]})
    out = present.table_html(df, "Valid responses, 2025Q1", "Table 2.1", notes="Shares of all issued.",
                             formats={"share": "pct:2", "p": "p"}, labels={"n": "Responses (n)"})
    assert "<caption><span class=\"label\">Table 2.1</span>" in out
    # number cells keep "91.88 %" and "< .001" on one line (no-break spaces) when a wide table lets numbers wrap
    assert "1,204" in out and "91.88\u00a0%" in out and "&lt;\u00a0.001" in out and ".500" in out
    assert "Responses (n)" in out and "效率 &lt;b&gt;" in out  # escaped
    assert 'class="dataframe"' not in out
    assert "<th></th>" not in out and ">0<" not in out  # no index column, no row numbers
    assert '<td class="num">' in out and '<td class="text">' in out
    assert "<em>Note.</em> Shares of all issued." in out
    # a named index is shown as a column; MultiIndex columns get a spanning header
    df2 = pd.DataFrame([[1.0, 2.0]], index=pd.Index(["pilot"], name="group"),
                       columns=pd.MultiIndex.from_tuples([("2025Q1", "mean"), ("2025Q1", "sd")]))
    out2 = present.table_html(df2, "By group", None)
    assert '<th colspan="2" class="group">2025Q1</th>' in out2 and ">pilot<" in out2


def test_numbering_per_chapter_and_appendix(monkeypatch):
    shown = []
    monkeypatch.setattr(present, "_display", lambda markup, meta: shown.append((markup, meta)))
    df = pd.DataFrame({"a": [1]})
    present.chapter(2, "Current state")
    assert present.table(df, "one") == "Table 2.1"
    assert present.next_label("table") == "Table 2.2"
    assert present.table(df, "two") == "Table 2.2"
    assert present.heading("Reliability") == "2.1"
    assert present.heading("Alpha", level=3) == "2.1.1"
    assert present.heading("Validity") == "2.2"
    assert present.heading("HTMT", level=3) == "2.2.1"
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    assert present.figure(fig, "a figure") == "Figure 2.1"
    assert present.equation(r"x^2") == "(2.1)"
    present.chapter(2, "Current state")  # re-running the notebook restarts its numbering
    assert present.table(df, "again") == "Table 2.1"
    present.chapter("A", "Methods")
    assert present.table(df, "appendix") == "Table A.1"
    assert shown[-2][1] == {"kind": "chapter", "number": "A", "title": "Methods"}
    assert "Appendix A" in shown[-2][0]
    present.set_chapter(None)


def test_figure_png_kpis_and_callout_markup(monkeypatch):
    shown = []
    monkeypatch.setattr(present, "_display", lambda markup, meta: shown.append((markup, meta)))
    present.set_chapter(3)
    fig = figures.bar_ci(pd.DataFrame({"c": ["a", "b"], "v": [1.0, 2.0]}), "c", "v", value_label="Value (min)")
    assert present.figure(fig, "PNG figure", format="png", notes="A note.") == "Figure 3.1"
    markup, meta = shown[-1]
    assert 'src="data:image/png;base64,' in markup and 'style="width:' in markup and "<em>Note.</em> A note." in markup
    assert meta == {"kind": "figure", "label": "Figure 3.1", "caption": "PNG figure", "caption_html": "PNG figure",
                    "anchor": "figure-3-1"}
    present.kpis([{"label": "CSAT", "value": "81.2", "change": "+2.7", "note": present.Md("*p* = .002"), "status": "good"},
                  {"label": "NPS *x*", "value": "27", "note": "*p* = .5"}], caption="Headline figures")
    assert 'class="kpi kpi-good"' in shown[-1][0] and 'class="kpi kpi-neutral"' in shown[-1][0]
    assert "<em>p</em> = .002" in shown[-1][0]  # an Md is Markdown
    assert "NPS *x*" in shown[-1][0] and "*p* = .5" in shown[-1][0]  # a plain str is literal
    with pytest.raises(ValueError, match="status"):
        present.kpis([{"label": "x", "value": "1", "status": "great"}])
    present.callout(present.md("Act on **{}** first.", "retention"), kind="warning", title="Priority")
    assert 'class="callout callout-warning"' in shown[-1][0] and "<strong>retention</strong>" in shown[-1][0]
    present.callout("Act on **retention** first.")
    assert "**retention**" in shown[-1][0] and "<strong>" not in shown[-1][0]
    long = present.table_html(pd.DataFrame({"h": ["a" * 64] * 30}), "Hashes")
    assert 'class="study-table long"' in long and 'class="text token"' in long
    present.set_chapter(None)


def test_ref_displays_nothing():
    from IPython.core.formatters import DisplayFormatter

    ref = present.Ref("Table 2.3")
    assert f"see {ref}" == "see Table 2.3"
    assert DisplayFormatter().format(ref) == ({}, {})


def test_markdown_math_becomes_svg_images():
    out = present.markdown_to_html("Weight $W_i$ and $$\\frac{a}{b}$$ but not `$code$` nor $5 or \\$x$.")
    assert out.count('src="data:image/svg+xml;base64,') == 2
    assert "<code>$code$</code>" in out and "$5" in out
    assert 'class="equation"' in out
    svg, w, h, d = present.tex_to_svg(r"\sum_i W_i \frac{X_i - X_{min}}{X_{max} - X_{min}}")
    assert svg.startswith("<svg") and w > 0 and h > 0 and d >= 0
    assert "<text" not in svg  # glyphs as paths: no font needed to view it
    with pytest.raises(ValueError, match="cannot render the formula"):
        present.tex_to_svg(r"\frac{a}{")


# ---------------------------------------------------------------------------------------------
# Figures


def _all_axes_labelled(fig: Figure) -> bool:
    for ax in fig.axes:
        if ax.name == "polar":
            if not ax.get_xlabel():
                return False
        elif not (ax.get_xlabel() and (ax.get_ylabel() or ax.get_yticklabels())):
            return False
    return True


def test_figure_helpers_return_labelled_figures_and_render_chinese():
    rng = np.random.default_rng(1)
    dims = ["专业能力", "Efficiency 效率", "Attitude", "Retention 客户维护"]
    d = pd.DataFrame({"dim": dims, "score": [82.1, 72.5, 77.7, 66.4]})
    d["lo"], d["hi"] = d["score"] - 2, d["score"] + 2
    ts = pd.DataFrame({"week": pd.date_range("2025-01-05", periods=20, freq="W")})
    ts["wait"] = 12 - 2 * (ts["week"] >= "2025-03-01") + rng.normal(0, 0.3, 20)
    ts["fit"] = np.where(ts["week"] >= "2025-03-01", 10.0, 12.0)
    pt = pd.DataFrame({"bt": rng.choice(dims, 400), "m": rng.gamma(4, 4, 400)})
    dw = pd.DataFrame({"metric": ["Waiting", "Waiting", "CSAT", "CSAT"], "period": ["Q1", "Q2"] * 2,
                       "est": [12.0, 9.6, 78.5, 81.2], "unit": ["min", "min", "score (0–100)", "score (0–100)"]})
    dw["lo"], dw["hi"] = dw["est"] - 1, dw["est"] + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph (a box instead of 中) warns
        figs = [
            figures.bar_ci(d, "dim", "score", lo="lo", hi="hi", value_label="Score (0–100)", ref=75, ref_label="Target"),
            figures.bar_ci(d.assign(q="2025Q1"), "dim", "score", lo="lo", hi="hi", group="q",
                           value_label="Score (0–100)", horizontal=False, category_label="Dimension"),
            figures.ipa_scatter(d.assign(imp=[0.2, 0.1, 0.15, 0.3]), "imp", "score", "dim",
                                importance_label="Importance (share of R²)", performance_label="Score (0–100)"),
            figures.radar(d, "dim", "score", value_label="Score (0–100)", vmin=0, vmax=100),
            figures.dot_whisker(dw, "metric", "est", "lo", "hi", group="period", unit="unit"),
            figures.dot_whisker(dw, "metric", "est", "lo", "hi", group="period", estimate_label="Estimate (mixed)"),
            figures.its_plot(ts, "week", "wait", intervention="2025-03-01", fitted="fit",
                             value_label="Waiting time (min)", time_label="Week (2025)"),
            figures.process_times(pt, "bt", "m", value_label="Handling time (min)", standard={"专业能力": 15}),
            figures.process_times(pt, "bt", "m", value_label="Handling time (min)", kind="violin"),
        ]
        for fig in figs:
            assert isinstance(fig, Figure)
            assert _all_axes_labelled(fig)
            fig.savefig(__import__("io").BytesIO(), format="svg")
    assert "Noto Sans CJK SC" in figures.theme_rc()["font.family"] or not any(
        "CJK" in f.name for f in __import__("matplotlib").font_manager.fontManager.ttflist)
    with pytest.raises(ValueError, match="not in the data"):
        figures.bar_ci(d, "dim", "nope", value_label="x (u)")
    with pytest.raises(TypeError):
        figures.bar_ci(d, "dim", "score")  # the axis label (with its unit) is required


# ---------------------------------------------------------------------------------------------
# Report pieces that need no kernel


def _nb_with_output(output: dict):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.from_dict(output)]
    nb.cells = [nbformat.v4.new_markdown_cell("intro"), cell]
    return nb


@pytest.mark.parametrize("output, message", [
    ({"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": "   a\n0  1"}},
     "raw value"),
    ({"output_type": "display_data", "metadata": {}, "data": {"text/plain": "x", "text/html": '<table class="dataframe">'}},
     "DataFrame as pandas renders it"),
    ({"output_type": "display_data", "metadata": {}, "data": {"text/plain": "<Figure>", "image/png": "iVBOR"}},
     "figure without number and caption"),
    ({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}, "ValueError: bad"),
])
def test_check_outputs_refuses_what_a_reader_must_not_see(output, message):
    with pytest.raises(StudyError, match=message) as exc:
        report.check_outputs(_nb_with_output(output), "3.0-drivers.ipynb")
    assert "notebook 3.0-drivers.ipynb, cell 2" in str(exc.value)


def test_check_outputs_drops_streams():
    nb = _nb_with_output({"output_type": "stream", "name": "stderr", "text": "UserWarning: ..."})
    notes = report.check_outputs(nb, "x.ipynb")
    assert nb.cells[1].outputs == [] and "1 stream" in notes[0]


def test_error_line_from_ipython_traceback():
    tb = ["\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
          "\x1b[0;31mValueError\x1b[0m                                Traceback (most recent call last)",
          "Cell \x1b[0;32mIn[4], line 2\x1b[0m\n\x1b[1;32m      1\x1b[0m x \x1b[38;5;241m=\x1b[39m 1\n"
          "\x1b[0;32m----> 2\x1b[0m \x1b[38;5;28;01mraise\x1b[39;00m \x1b[38;5;167;01mValueError\x1b[39;00m(\x1b[38;5;124m'boom'\x1b[39m)",
          "\x1b[0;31mValueError\x1b[0m: boom"]
    assert report._error_line(tb) == (2, "raise ValueError('boom')")


def test_self_contained_check():
    report.assert_self_contained('<img src="data:image/png;base64,AAA"><a href="#table-2-1">x</a>')
    for bad in ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
                '<link rel="stylesheet" href="https://fonts.googleapis.com/css">', '<a href="https://example.org">x</a>',
                '<img src="figure.png">', '<style>body{background:url(http://x/y.png)}</style>'):
        with pytest.raises(StudyError, match="refused"):  # more cases in test_hostile_report.py
            report.assert_self_contained(bad)


def test_locate_pages_skips_the_front_matter():
    entries = [{"key": "e0", "text": "1 Data and scope"}, {"key": "e1", "text": "1.1 Response counts"},
               {"key": "e2", "text": "Table 1.1 Valid responses"}]
    pages = ["Title", "Contents 1 Data and scope 1.1 Response counts Table 1.1 Valid responses",
             "1 Data and\nscope ... see Table 1.1", "1.1 Response counts Table 1.1 Valid\nresponses"]
    assert report.locate_pages(entries, pages) == {"e0": 3, "e1": 4, "e2": 4}


def test_provenance(tmp_path, study_file):
    q = tmp_path / "processed" / "2025Q1"
    q.mkdir(parents=True)
    manifest = {"study_sha256": "0" * 64,
                "inputs": {"survey": {"file": "survey.csv", "sha256": "a" * 64}},
                "outputs": {"survey": {"file": "survey.parquet", "sha256": "b" * 64}}}
    (q / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    prov = report.provenance(study_file, tmp_path, ["2025Q1"], {"quarter": "2025Q1", "seed": 7})
    assert list(prov.columns) == ["section", "item", "value"]
    d = prov.set_index(["section", "item"])["value"].to_dict()
    assert d[("Study definition", study_file.name)] == hashlib.sha256(study_file.read_bytes()).hexdigest()
    assert d[("Input data", "2025Q1 survey: survey.csv")] == "a" * 64
    assert d[("Processed data", "2025Q1 survey: survey.parquet")] == "b" * 64
    assert d[("Study definition", "as used to prepare 2025Q1")].startswith("different")
    assert d[("Parameters", "seed")] == "7"
    assert re.match(r"^([0-9a-f]{40}|unknown)", d[("Software", "git commit")])
    assert ("Software", "pandas") in d and ("Run", "date") in d
    with pytest.raises(StudyError, match="no manifest for quarter 2025Q2"):
        report.provenance(study_file, tmp_path, ["2025Q2"])


# ---------------------------------------------------------------------------------------------
# End to end: two notebooks -> report.html + report.pdf


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    if not HAVE_TOOLS:
        pytest.skip("needs chromium")
    out = tmp_path_factory.mktemp("reports")
    return report.render_report("2025Q1", "2024Q4", notebooks_dir=NB_DIR, out_dir=out, timeout=120, jobs=2)


@needs_tools
def test_one_shot_print_fallback_gives_a4_with_footer(tmp_path):
    page = tmp_path / "p.html"
    css = (Path(report.TEMPLATES_DIR) / "report.css").read_text(encoding="utf-8")
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{css}</style></head>"
                    "<body><header class='title-page'>Title</header><p>第二页 second page</p></body></html>",
                    encoding="utf-8")
    report.print_pdf(page, tmp_path / "p.pdf")
    pages = report.pdf_pages_text(tmp_path / "p.pdf")
    assert len(pages) == 2 and "Page 2 of 2" in pages[1] and "第二页 second page" in pages[1]


def test_test_notebooks_are_committed_without_outputs():
    for path in NB_DIR.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


@needs_tools
def test_render_writes_report_and_executed_notebooks(rendered):
    folder = rendered.folder
    assert folder.name == "2025Q1"
    assert (folder / "report.html").is_file() and (folder / "report.pdf").is_file()
    assert sorted(p.name for p in (folder / "notebooks").glob("*.ipynb")) == ["1.0-alpha.ipynb", "2.0-beta.ipynb"]
    nb = nbformat.read(folder / "notebooks" / "1.0-alpha.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'quarter = "2025Q1"' in injected[0].source
    # as the user names it, never the machine's absolute path (study.report.paths)
    shown = report.report_paths.display_path(Path(report.config.DEFAULT_STUDY_FILE).resolve())
    assert f'study_file = "{shown}"' in injected[0].source and str(Path.home()) not in injected[0].source
    assert not list(folder.parent.glob(".2025Q1.tmp-*"))  # the temporary folder was swapped in
    meta = json.loads((folder / "render.json").read_text())
    assert meta["chapters"] == ["1", "2"] and meta["pages"] == rendered.pages and meta["jobs"] == 2


@needs_tools
def test_html_is_self_contained_and_clean(rendered):
    text = unmarked(rendered.html.read_text(encoding="utf-8"))
    # no external script or style sheet, no CDN, every image embedded
    assert not re.search(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text, re.I)
    assert "<script" not in text.lower() and "mathjax" not in text.lower()
    srcs = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", text)
    assert len(srcs) >= 4 and all(s.startswith("data:image/") for s in srcs)  # figure + formulas
    assert "url(http" not in text
    # numbered captions, chapter headings, sections, contents
    assert '<span class="label">Table 1.1</span>' in text
    assert '<span class="label">Table 2.1</span>' in text
    assert '<span class="label">Figure 2.1</span>' in text
    assert re.search(r'<h1[^>]*class="chapter-title"[^>]*><span class="number">1</span> Data and scope</h1>', text)
    assert re.search(r'<h1[^>]*><span class="number">2</span> Results 结果</h1>', text)
    assert '<span class="number">1.2</span> A Markdown section' in text  # Markdown headings numbered too
    assert 'class="eq-number">(1.1)</span>' in text
    assert "91.88 %" in text and "专业能力" in text
    assert "t(37.9) = 2.13, p = .038, g = 0.61, 95 % CI [0.10, 1.12]" in text
    # no code, no prompts, no streams, no warnings, no tracebacks, no DataFrame reprs
    for banned in ("Traceback", "import pandas", "present.table(", "load_study(", "In&nbsp;[", "stdout must not",
                   "warning must not", "UserWarning", 'class="dataframe"', "<pre", "jp-InputArea",
                   "Throw-away chapter notebook"):
        assert banned not in text, banned
    # the contents carry the PDF page of each chapter
    pages = dict(re.findall(r'<span class="toc-page" data-toc="(e\d+)">(\d*)</span>', text))
    assert pages["e0"] == "3"


@needs_tools
def test_pdf_is_a4_with_page_numbers_and_the_text(rendered):
    import pypdf

    box = pypdf.PdfReader(rendered.pdf).pages[0].mediabox
    w, h = float(box.width), float(box.height)
    assert abs(w - 595.3) < 2 and abs(h - 841.9) < 2  # A4 portrait
    pages = report.pdf_pages_text(rendered.pdf)
    n = len(pages)
    assert n == rendered.pages and n >= 4
    assert "Page" not in pages[0]  # title page without footer
    for i in range(1, n):
        assert f"Page {i + 1} of {n}" in pages[i]
    assert "Contents" in pages[1]
    flat = [re.sub(r"\s+", " ", p) for p in pages]
    # chapters start on their own page
    assert re.search(r"^\S.*?\b1 Data and scope", flat[2].split("Page")[0]) or "1 Data and scope" in flat[2]
    assert "2 Results 结果" in flat[3] and "1 Data and scope" not in flat[3]
    body = " ".join(flat[2:])
    for needle in ("Table 1.1", "Figure 2.1", "Table 2.1", "91.88 %", "专业能力", "(1.1)",
                   "t(37.9) = 2.13, p = .038, g = 0.61, 95 % CI [0.10, 1.12]"):
        assert needle in body, needle
    assert "Traceback" not in body and "import" not in body


@needs_tools
def test_failing_cell_names_notebook_and_cell_and_keeps_previous_report(rendered, tmp_path):
    out = tmp_path / "reports"
    shutil.copytree(rendered.folder, out / "2025Q1")
    before = hashlib.sha256((out / "2025Q1" / "report.html").read_bytes()).hexdigest()
    bad_dir = tmp_path / "notebooks"
    bad_dir.mkdir()
    shutil.copy(NB_DIR / "1.0-alpha.ipynb", bad_dir)
    nb = nbformat.read(NB_DIR / "2.0-beta.ipynb", as_version=4)
    nb.cells[2].source = "x = 1\nraise ValueError('boom 42')"
    nbformat.write(nb, bad_dir / "2.0-beta.ipynb")
    with pytest.raises(StudyError) as exc:  # two notebooks at a time: the error crosses the process boundary
        report.render_report("2025Q1", "2024Q4", notebooks_dir=bad_dir, out_dir=out, pdf=False, jobs=2)
    msg = str(exc.value)
    assert msg.startswith("notebook 2.0-beta.ipynb failed at cell 3 (In [")
    assert "line 2: raise ValueError('boom 42')" in msg and "ValueError: boom 42" in msg
    assert "Traceback" not in msg and "\x1b[" not in msg
    assert isinstance(exc.value, report.NotebookFailed)
    assert exc.value.notebook == "2.0-beta.ipynb" and exc.value.cell == 3 and exc.value.ename == "ValueError"
    # the previous report is intact, no temporary folder is left, the failed notebook is kept
    assert hashlib.sha256((out / "2025Q1" / "report.html").read_bytes()).hexdigest() == before
    assert (out / "2025Q1" / "report.pdf").is_file()
    assert not list(out.glob(".2025Q1.tmp-*"))
    kept = nbformat.read(out / "2025Q1.failed" / "2.0-beta.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in kept.cells for o in c.get("outputs", []))
    # and holds no absolute path of the machine (papermill records input, output and parameters as absolute paths)
    text = (out / "2025Q1.failed" / "2.0-beta.ipynb").read_text(encoding="utf-8")
    assert str(tmp_path) not in text and str(Path.home()) + "/" not in text


def test_cli_reports_a_render_error_without_traceback(tmp_path, capsys, monkeypatch):
    from study import cli

    nb = nbformat.read(NB_DIR / "1.0-alpha.ipynb", as_version=4)
    for c in nb.cells:
        c.metadata["tags"] = []
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "1.0-untagged.ipynb")
    real = report.render_report
    monkeypatch.setattr(report, "render_report", lambda *a, **k: real(
        *a, **{**k, "notebooks_dir": tmp_path / "nb", "out_dir": tmp_path / "out", "pdf": False}))
    code = cli.main(["report", "--quarter", "2025Q1", "--baseline", "2024Q4"])
    err = capsys.readouterr().err
    assert code == 2
    assert "1.0-untagged.ipynb: no cell is tagged 'parameters'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "2025Q1").exists()


# ---------------------------------------------------------------------------------------------
# Killed renders (issue 11)


def test_clean_stale_temporaries_keeps_live_owners(tmp_path):
    import os
    import time

    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = report._owner_tag()
    folders = {
        f".2025Q2.tmp-{dead.pid}-1-abc": True,                  # owner gone: removed
        f".2025Q1.tmp-{mine}-xyz": False,                        # a render running now (another quarter): kept
        f".2025Q2.old-{dead.pid}-1-1700000000000": True,         # a swap interrupted: removed
        f".2025Q2.tmp-{os.getpid()}-1-reused": True,             # a live pid that started at another time: reused
        ".2025Q2.tmp-ab12cd34": True,                            # an earlier version's name, untouched for a day
        ".2025Q3.tmp-ef56gh78": False,                           # same, but fresh: kept
        "2025Q2": False, ".gitkeep-dir": False,
    }
    for name in folders:
        (tmp_path / name).mkdir()
    old = time.time() - 2 * report.LEGACY_TEMP_AGE
    os.utime(tmp_path / ".2025Q2.tmp-ab12cd34", (old, old))
    removed = report.clean_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(n for n, gone in folders.items() if gone)
    assert all((tmp_path / n).exists() != gone for n, gone in folders.items())


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_children_die_with_the_render(tmp_path):
    """A process started with die_with_parent (workers, kernels, Chromium) goes when its parent is killed."""
    import os
    import signal
    import sys
    import time

    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; from study.report.render import die_with_parent; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=die_with_parent, "
            "start_new_session=True); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.1)
    grandchild = int(pidfile.read_text())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(50):
        if not report._process_start(grandchild):  # gone, or a zombie nobody has reaped yet
            break
        time.sleep(0.1)
    else:
        os.kill(grandchild, signal.SIGKILL)
        pytest.fail("the grandchild outlived its killed parent")
