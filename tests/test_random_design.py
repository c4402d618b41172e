"""Generated studies with a sampling design and many quarters (issue 13) render, and every sentence of
the weighting rule and the tracking sections holds (tests/report_premises.py). The RENDER_SEEDS of
tests/test_random_studies.py cover one, two and three quarters with and without ``sampling``; this one
adds five quarters with a design."""

from __future__ import annotations

import pytest

from study import cli, report
from tests import studygen
from tests.report_premises import check_report, read_report

pytestmark = pytest.mark.random_studies


@pytest.mark.slow
def test_random_study_with_design_and_five_quarters(tmp_path, capsys):
    g = studygen.make_study(2100, tmp_path, optional=True, sampling=True, n_quarters=5)
    assert g.sampling and len(g.quarters) == 5
    for q in g.quarters:
        rc = cli.main(["prepare", "--quarter", q, "--data-dir", str(g.data_dir), "--study", str(g.study_file)])
        assert rc == 0, (g.describe(), capsys.readouterr().out[-2000:])
    res = report.render_report(g.current, g.baseline, study_file=g.study_file, data_dir=g.data_dir,
                               out_dir=tmp_path / "reports", pdf=False, parameters={"n_boot": 50})
    doc = read_report(res.html)
    problems = check_report(g, doc)
    assert not problems, f"{g.describe()}\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert any("Tracking across quarters" in text for _, text in doc.headings)
    assert any("Trend across quarters" in text for _, text in doc.headings)
    assert "The sample is stratified by" in doc.chapter("Appendix A")
