"""Tracking across quarters (study.stats.trend) on small hand-made quarters: 1, 2 and many quarters, the
slope's variance, and the control-chart limits by their textbook formulas (Montgomery ch. 6-7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.stats import trend
from tests.conftest import small_survey


def _quarters(study, qs, n=60):
    out = {}
    for i, q in enumerate(qs):
        s = small_survey(study, n=n, seed=10 + i)
        y, k = int(q[:4]), int(q[-1])
        s["interview_date"] = pd.Timestamp(y, 3 * k - 2, 1) + pd.to_timedelta(np.arange(n) % 85, unit="D")
        out[q] = s
    return out


def test_one_quarter_gives_levels_no_change_no_trend(study):
    plain = study.model_copy(update={"sampling": None})     # a study without sampling: as before, unweighted
    s = _quarters(plain, ["2025Q1"])
    pq = trend.quarterly(s, plain)
    assert set(pq["quarter"]) == {"2025Q1"} and not pq["weighted"].any()
    assert (pq["estimate"] == pq["unweighted"]).all()
    assert trend.changes(s, plain).empty and trend.slopes(pq).empty
    assert trend.quarterly(s, study)["weighted"].all()       # the sample study's design weights them


def test_two_quarters_give_a_change_and_no_trend(study):
    s = _quarters(study, ["2025Q1", "2025Q2"])
    ch = trend.changes(s, study)
    assert set(ch["before"]) == {"2025Q1"} and set(ch["after"]) == {"2025Q2"}
    assert (ch["p_holm"] == ch["p"]).all()              # one comparison per metric: nothing to adjust
    assert trend.slopes(trend.quarterly(s, study)).empty


def test_slope_and_its_variance_by_hand():
    pq = pd.DataFrame({"quarter": ["2024Q1", "2024Q2", "2024Q4"], "metric": "m", "estimate": [1.0, 2.0, 5.0],
                       "se": [0.5, 1.0, 2.0]})
    s = trend.slopes(pq).iloc[0]
    x = np.array([0, 1, 3.0])
    c = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
    assert s["slope"] == pytest.approx(np.polyfit(x, [1, 2, 5], 1)[0], abs=1e-12)   # the least-squares slope
    assert s["se"] == pytest.approx(np.sqrt((c ** 2 * np.array([0.25, 1, 4])).sum()), abs=1e-12)


def test_many_quarters_and_holm(study):
    qs = ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1"]
    s = _quarters(study, qs, n=40)
    ch = trend.changes(s, study)
    one = ch[ch["metric"] == "csat_mean_0_100"]
    assert len(one) == 4
    from study.stats.effects import adjust_p

    # statsmodels multipletests(method="holm"), the toolkit's adjust_p
    assert one["p_holm"].to_numpy() == pytest.approx(adjust_p(one["p"].to_numpy(), "holm"), abs=1e-15)
    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 40):
        p = rng.random(m) ** 3
        p[rng.integers(m)] = p[0]          # ties
        assert trend.holm(p) == pytest.approx(adjust_p(p, "holm"), abs=1e-15)
    assert len(trend.slopes(trend.quarterly(s, study))) > 0


def _months(values, ns, kind, counts=None, sds=None, quarter=None):
    months = [f"2024-{m:02d}" for m in range(1, len(values) + 1)]
    return pd.DataFrame({"month": months, "quarter": quarter or [f"2024Q{(m - 1) // 3 + 1}" for m in range(1, len(values) + 1)],
                         "metric": {"share": "csat_top2", "score": "csat_mean_0_100", "duration": "waiting_minutes"}[kind],
                         "kind": kind, "n": ns, "value": values, "sd": sds if sds is not None else np.nan,
                         "count": counts if counts is not None else np.nan})


def test_p_chart_limits_and_phase_i():
    ns = [100, 120, 80, 100, 100, 100]
    counts = [85, 100, 68, 40, 86, 90]
    t = _months([c / n for c, n in zip(counts, ns)], ns, "share", counts=counts)
    ch = trend.control_charts(t, ("2024Q1", "2024Q2"))
    # month 4 (40 %) is out; Phase I sets it aside and the centre is the pooled share of the others
    keep = [0, 1, 2, 4, 5]
    p = sum(counts[i] for i in keep) / sum(ns[i] for i in keep)
    assert ch["centre"].iloc[0] == pytest.approx(p)
    assert ch["ucl"].to_numpy() == pytest.approx(p + 3 * np.sqrt(p * (1 - p) / np.array(ns)))
    assert ch["out_of_control"].tolist() == [False, False, False, True, False, False]
    assert ch.loc[3, "side"] == "below" and not ch.loc[3, "used"]


def test_xbar_and_individuals_limits():
    ns, sds, vals = [50, 60, 40, 50], [10.0, 12.0, 11.0, 10.0], [70.0, 71.0, 69.0, 90.0]
    ch = trend.control_charts(_months(vals, ns, "score", sds=sds), ("2024Q1", "2024Q1"))
    centre = (70 * 50 + 71 * 60 + 69 * 40) / 150
    sigma = np.sqrt((49 * 100 + 59 * 144 + 39 * 121) / (49 + 59 + 39))
    assert ch["centre"].iloc[0] == pytest.approx(centre) and ch["chart"].iloc[0] == "xbar"
    assert ch["lcl"].to_numpy() == pytest.approx(centre - 3 * sigma / np.sqrt(ns))
    assert ch["out_of_control"].tolist() == [False, False, False, True]
    ind = trend.control_charts(_months([10.0, 11.0, 10.5, 14.0], [900] * 4, "duration"), ("2024Q1", "2024Q1"))
    mr = np.mean([1.0, 0.5])
    assert ind["ucl"].iloc[0] == pytest.approx(10.5 + 3 * mr / 1.128) and ind["chart"].iloc[0] == "individuals"
    assert ind["out_of_control"].tolist() == [False, False, False, True]


def test_no_baseline_months_no_limits():
    t = _months([0.8, 0.9], [100, 100], "share", counts=[80, 90])
    ch = trend.control_charts(t, ("2023Q1", "2023Q2"))
    assert ch["lcl"].isna().all() and not ch["out_of_control"].any()
    assert trend.control_charts(t, None).empty


def test_weighted_monthly_values_and_their_control_limits_by_hand(study):
    """With the design's weights: a month's value is Σwy/Σw, its subgroup size Kish's (Σw)²/Σw², the centre the
    weighted mean of the baseline months. Every number below is worked by hand from the six respondents."""
    dates = ["2024-01-10", "2024-01-20", "2024-01-25", "2024-02-05", "2024-02-06", "2024-04-02", "2024-04-03"]
    survey = pd.DataFrame({"interview_date": dates}, index=[10, 11, 12, 13, 14, 15, 16])
    top2 = pd.Series([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0], index=survey.index)
    score = pd.Series([80.0, 40.0, 60.0, 100.0, 50.0, 20.0, 30.0], index=survey.index)
    w = pd.Series([1.0, 2.0, 3.0, 4.0, 4.0, 1.0, 1.0], index=survey.index)
    ind = pd.DataFrame({"csat_top2": top2, "csat_mean_0_100": score})
    q1, q2 = survey.iloc[:5], survey.iloc[5:]
    mt = trend.monthly({"2024Q1": q1, "2024Q2": q2}, study, indicators={"2024Q1": ind.loc[q1.index], "2024Q2": ind.loc[q2.index]},
                       weights={"2024Q1": w.loc[q1.index], "2024Q2": w.loc[q2.index]})
    jan = mt[(mt["month"] == "2024-01")].set_index("metric")
    # January: top-2 (1·1 + 2·0 + 3·1)/6 = 2/3; n_eff = 6²/(1 + 4 + 9) = 36/14; score (80 + 80 + 180)/6 = 340/6
    assert jan.loc["csat_top2", "value"] == pytest.approx(2 / 3) and jan.loc["csat_top2", "n_eff"] == pytest.approx(36 / 14)
    assert jan.loc["csat_mean_0_100", "value"] == pytest.approx(340 / 6)
    # weighted SD of the January scores: Σw(y − ȳ)²/Σw · n/(n − 1) = (1·(80 − 56.6̅)² + 2·(40 − 56.6̅)² + 3·(60 − 56.6̅)²)/6 · 3/2
    m = 340 / 6
    assert jan.loc["csat_mean_0_100", "sd"] == pytest.approx(np.sqrt(((80 - m) ** 2 + 2 * (40 - m) ** 2 + 3 * (60 - m) ** 2) / 6 * 1.5))
    feb = mt[(mt["month"] == "2024-02")].set_index("metric")
    assert feb.loc["csat_top2", "value"] == pytest.approx(0.5) and feb.loc["csat_top2", "n_eff"] == pytest.approx(2.0)
    ch = trend.control_charts(mt, ("2024Q1", "2024Q1"))
    p = ch[ch["metric"] == "csat_top2"].set_index("month")
    # centre: (2/3·6 + 1/2·8)/(6 + 8) = 8/14 (the weighted share of the five Q1 respondents: (1 + 3 + 4)/14)
    centre = 8 / 14
    assert p.loc["2024-01", "centre"] == pytest.approx(centre) and p.loc["2024-01", "chart"] == "p"
    assert p.loc["2024-01", "ucl"] == pytest.approx(centre + 3 * np.sqrt(centre * (1 - centre) / (36 / 14)))
    assert p.loc["2024-04", "lcl"] == pytest.approx(centre - 3 * np.sqrt(centre * (1 - centre) / 2.0))   # April: w = 1, 1
    x = ch[ch["metric"] == "csat_mean_0_100"].set_index("month")
    # X-bar centre: (340 + 4·100 + 4·50)/14 = 940/14; σ̂ pooled from Jan (n = 3) and Feb (n = 2) weighted SDs
    sd_feb = np.sqrt((4 * 25 ** 2 + 4 * 25 ** 2) / 8 * 2)
    sigma = np.sqrt((2 * jan.loc["csat_mean_0_100", "sd"] ** 2 + 1 * sd_feb ** 2) / 3)
    assert x.loc["2024-01", "centre"] == pytest.approx(940 / 14)
    assert x.loc["2024-02", "ucl"] == pytest.approx(940 / 14 + 3 * sigma / np.sqrt(2.0))
