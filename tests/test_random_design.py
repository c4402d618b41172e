"""Generated studies with a sampling design and many quarters (issue 13) render, and every sentence of
the weighting rule and the tracking sections holds (tests/report_premises.py). The RENDER_SEEDS of
tests/test_random_studies.py cover one, two and three quarters with and without ``sampling``; this one
adds five quarters with a design."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import cli
from study.report import analysis
from study.report import design_analysis as dsa
from study.report import render as report
from study.stats import trend
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


def _lonely(raw: Path, branch: str) -> None:
    """Keep one respondent of ``branch`` in a raw survey file (a stratum of one)."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            df = pd.read_csv(raw, encoding=enc, dtype=str)
            break
        except UnicodeDecodeError:
            continue
    rows = df.index[df["branch_id"] == branch]
    df.drop(index=rows[1:]).to_csv(raw, index=False, encoding="utf-8")


@pytest.mark.parametrize("n_quarters, lonely", [(1, False), (2, False), (2, True), (4, True)])
def test_design_based_drivers_effects_and_tracking_at_edge_sizes(tmp_path, capsys, n_quarters, lonely):
    """The design-based driver regression, survey DiDs, pilot vs control, weighted charts and change-target progress
    with one quarter, two and several, and with a stratum of one respondent (R survey's lonely PSU "adjust")."""
    g = studygen.make_study(2200 + n_quarters, tmp_path, optional=True, sampling=True, n_quarters=n_quarters,
                            controls=True, measure_starts=["current_inside"], n_survey=160, targets=True,
                            n_branches=6)
    if lonely:
        # a branch outside the groups, or in a group of several: the DiD's cells keep their respondents
        alone = {b for m in g.measures for grp in (m.pilot, m.control) if len(grp) == 1 for b in grp}
        branch = sorted(b for b in g.branches if b not in alone)[-1]
        _lonely(next((g.data_dir / "raw" / g.current).glob("survey.*")), branch)
    for q in g.quarters:
        rc = cli.main(["prepare", "--quarter", q, "--data-dir", str(g.data_dir), "--study", str(g.study_file)])
        assert rc == 0, (g.describe(), capsys.readouterr().out[-2000:])
    ctx = analysis.context(g.study_file, g.data_dir, g.current, g.baseline, seed=1, n_boot=20)
    drv = analysis.drivers(ctx)
    if not analysis.is_skipped(drv):
        assert drv["model"].fit["cov_type"] == "design" and drv["model_unweighted"].fit["cov_type"] == "HC3"
        assert np.isfinite(drv["model"].terms["se"]).all()
    ev = analysis.effects(ctx)
    survey_did = ev[(ev["analysis"] == "difference-in-differences") & ev["skipped"].eq("")
                    & ~ev["metric"].isin(trend.PROCESS_MEANS + ("cycle_minutes", "first_pass_yield", "within_service_level"))] \
        if not ev.empty else ev
    assert survey_did.empty or survey_did["test"].eq("did_design").all()
    if n_quarters >= 2:   # one pilot and one control branch: no clustered DiD, but the design's runs
        assert len(survey_did) and np.isfinite(survey_did["p_holm"]).all()
        # the table names no branch-cluster count for a figure whose variance comes from the strata
        from study.report import tables

        shown = tables.effects(ctx, ev[ev["analysis"] == "difference-in-differences"], "difference-in-differences")
        by_se = shown.set_index("Metric")
        assert (by_se["Standard errors"] == "design-based").any()
        assert (by_se.loc[by_se["Standard errors"] == "design-based", "Clusters"] == "—").all()
    pc = dsa.pilot_control(ctx).dropna(subset=["ci_low"])
    assert ((pc["ci_low"] <= pc["difference"]) & (pc["difference"] <= pc["ci_high"])).all()
    h = dsa.history(ctx)
    if n_quarters == 1:
        assert h is None
    else:
        assert h["monthly"].loc[~h["monthly"]["metric"].isin(trend.PROCESS_MEANS), "wsum"].notna().all()
        tp = h["targets"]
        assert tp[tp["kind"] != "level"]["quarter"].gt(g.baseline).all()
