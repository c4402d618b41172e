"""End to end: the real chapter notebooks render a small two-quarter study to HTML and PDF, and the
report shows every chapter, its tables and figures, and the headline figures the package computes.

The small study is the shipped sample with the process-time logs thinned to a few thousand tickets
per quarter (so the test runs in about a minute); the survey is kept whole so the survey figures
can be checked against the package's own computation.
"""

from __future__ import annotations

import gzip
import re
import shutil

import pandas as pd
import pytest

from study import analysis, present, report, validate
from study.config import DEFAULT_STUDY_FILE
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

QUARTERS = ("2025Q1", "2025Q2")
CHAPTERS = ["Executive summary", "Current state", "Problems found", "Improvement measures and their implementation",
            "Effect evaluation", "Conclusions and recommendations", "Methods", "Data quality", "Provenance"]


def small_sample(data_dir, every: int = 8, history: bool = False):
    """The shipped sample's raw quarters in ``data_dir/raw``, with every ``every``-th ticket only; with
    ``history`` also the earlier quarters (survey only), which the report tracks (issue 13)."""
    if history:
        for src in sorted((ROOT / "data" / "raw").glob("[0-9][0-9][0-9][0-9]Q[1-4]")):
            if src.name not in QUARTERS:
                (data_dir / "raw" / src.name).mkdir(parents=True)
                shutil.copy(src / "survey.csv", data_dir / "raw" / src.name)
    for q in QUARTERS:
        src = ROOT / "data" / "raw" / q
        dst = data_dir / "raw" / q
        dst.mkdir(parents=True)
        shutil.copy(src / "survey.csv", dst)
        shutil.copy(src / "benchmark.csv", dst)
        tickets = pd.read_csv(src / "process_times.csv.gz", dtype=str, keep_default_na=False)
        small = tickets.iloc[::every]                            # every 8th ticket: ~5,000 a quarter
        (dst / "process_times.csv.gz").write_bytes(gzip.compress(small.to_csv(index=False).encode("utf-8")))
    return data_dir


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, study):
    if report.find_chromium() is None:  # pragma: no cover - make setup installs it
        pytest.fail("Chromium is needed to print the PDF: run `make setup` (installs chromium, poppler-utils, fonts-noto-cjk)")
    data_dir = small_sample(tmp_path_factory.mktemp("small"), history=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDY_PSEUDONYM_KEY", "test-key-not-secret")
    try:
        for q in sorted(p.name for p in (data_dir / "raw").iterdir() if p.is_dir()):
            validate.prepare_quarter(study, DEFAULT_STUDY_FILE, data_dir, q)
        out = tmp_path_factory.mktemp("reports")
        res = report.render_report(QUARTERS[1], QUARTERS[0], study_file=DEFAULT_STUDY_FILE, data_dir=data_dir,
                                   out_dir=out, parameters={"n_boot": 200})
    finally:
        mp.undo()
    html = res.html.read_text(encoding="utf-8")
    pdf_text = "\n".join(report.pdf_pages_text(res.pdf))
    ctx = analysis.context(DEFAULT_STUDY_FILE, data_dir, QUARTERS[1], QUARTERS[0], seed=20250401, n_boot=200)
    return res, html, pdf_text, ctx


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_chapter_is_in_the_html_and_the_pdf(rendered):
    res, html, pdf_text, _ = rendered
    flat = _flat(pdf_text)
    for title in CHAPTERS:
        assert title in html, title
        assert title in flat, title
    assert res.pages and res.pages >= 15
    assert "Page 1 of" in flat or re.search(r"Page \d+ of \d+", flat)


def test_tables_and_figures_are_numbered_and_captioned(rendered):
    _, html, pdf_text, _ = rendered
    flat = _flat(pdf_text)
    for label in ("Table 1.1", "Table 2.1", "Table 3.1", "Table 4.1", "Table 5.1", "Table 6.1", "Table A.1", "Table B.1",
                  "Table C.1", "Figure 2.1", "Figure 5.1"):
        assert label in html, label
        assert label in flat, label


def test_no_code_warnings_or_tracebacks(rendered):
    _, html, pdf_text, _ = rendered
    for bad in ("Traceback", "Warning:", "DataFrame", "dtype:", "ctx = analysis", "present.table(", "<script"):
        assert bad not in html, bad
        assert bad not in pdf_text, bad
    assert not re.search(r"""(src|href)=["']https?://""", html)


def test_headline_figures_equal_the_package(rendered):
    _, html, pdf_text, ctx = rendered
    flat = _flat(pdf_text)
    head = analysis.headline(ctx).set_index("metric")
    # survey figures are computed from the whole survey: they must appear exactly as formatted
    csat = present.fmt_num(head.loc["csat_mean_0_100", "current"], 1)
    nps = present.fmt_num(head.loc["nps", "current"], 1)
    top2 = present.fmt_pct(head.loc["csat_top2", "current"])
    for value in (csat, nps, top2):
        assert value in flat and value in html, value
    assert f"overall satisfaction is {csat} of 100" in flat
    # the response rate of the data-quality appendix (digest: 735 / 800 = 91.88 %)
    assert "735 valid of 800 questionnaires, a valid response rate of 91.88 %" in flat
    # the DiD of the pilot's waiting time, as the effect chapter states it
    verdicts = analysis.measure_verdicts(ctx).set_index("metric")
    did = present.fmt_num(verdicts.loc["waiting_minutes", "estimate"], 2, sign=True)
    assert f"DiD {did}" in flat


def test_executed_notebooks_are_kept(rendered):
    res, *_ = rendered
    names = sorted(p.name for p in res.notebooks)
    assert names == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert all(p.is_file() for p in res.notebooks)


def test_the_report_finds_the_known_trend_and_out_of_control_month(rendered):
    """truth.json: satisfaction rises until 2024Q2 and 2024-11 is out of control; the design weights the
    bank-wide figures (Appendix A shows weighted and unweighted side by side)."""
    import json

    _, html, pdf_text, ctx = rendered
    flat = _flat(pdf_text)
    truth = json.loads((ROOT / "data" / "raw" / "truth.json").read_text(encoding="utf-8"))
    first, last, n = truth["quarters"][0], truth["quarters"][-1], len(truth["quarters"])
    assert f"Overall satisfaction (0-100) rose over the {n} quarters from {first} to {last}" in flat
    assert f"In {truth['tracking']['out_of_control_month']}, Overall satisfaction (0-100)" in flat
    assert "fell below the lower control limit" in flat
    assert "The sample is stratified by branch" in flat and "Weighted and unweighted estimates side by side" in flat
    for title in ("Trend across quarters", "Tracking across quarters", "Monthly statistics", "Control charts of the monthly"):
        assert title in flat, title
