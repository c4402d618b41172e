"""The sample study's known design and history are recovered (data/raw/truth.json).

The sample is drawn with equal allocation over twelve branches whose population sizes (study.yml
``sampling``) differ twelve-fold, and smaller branches are more satisfied (truth.json
``tracking.branch_shifts``): the unweighted estimate is biased upwards and its interval misses the
population value; the design-based estimate's interval holds it. Over eight quarters satisfaction
rises until ``trend_until`` and one month (``out_of_control_month``) is out of control.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.stats import design, trend

HEADLINE = {"csat_mean_0_100": "overall_satisfaction_0_100", "csat_top2": "csat_top2", "nps": "nps"}


@pytest.fixture(scope="module")
def baseline(prepared_sample, sample_frames, study):
    _, truth = prepared_sample
    q = truth["baseline"]
    return design.estimates(sample_frames[q]["survey"], study, q), truth["tracking"]["by_quarter"][q]


@pytest.mark.parametrize("metric", list(HEADLINE))
def test_unweighted_estimate_is_visibly_biased_and_the_weighted_one_recovers_the_truth(baseline, metric):
    est, true = baseline
    r, value = est.loc[metric], true[HEADLINE[metric]]
    assert r["weighted"]
    assert r["ci_low"] <= value <= r["ci_high"], (metric, r["estimate"], value)
    assert not r["unweighted_ci_low"] <= value <= r["unweighted_ci_high"], (metric, r["unweighted"], value)
    assert r["unweighted"] - value > 2 * abs(r["estimate"] - value)       # upwards, and far more than the weighted
    assert r["deff"] > 1.2 and r["n_eff"] < r["n"]                          # unequal weights cost precision


def test_complaint_rate_and_dimension_scores_on_the_design(baseline, study):
    est, true = baseline
    r = est.loc["complaint_rate"]
    assert r["ci_low"] <= true["complaint_rate"] <= r["ci_high"]
    # every dimension: the weighted estimate is nearer the population value than the unweighted one
    for d in study.dimension_ids:
        assert abs(est.loc[d, "estimate"] - true["dimension_scores_0_100"][d]) < abs(est.loc[d, "unweighted"] - true["dimension_scores_0_100"][d])


def test_weights_reproduce_the_population_sizes(sample_frames, study, prepared_sample):
    _, truth = prepared_sample
    q = truth["baseline"]
    d = design.build(sample_frames[q]["survey"], study, q)
    totals = d.frame.groupby("_stratum")["_weight"].sum()
    assert totals.to_dict() == pytest.approx(study.sampling.population)


def test_coverage_over_repeated_draws_of_the_design(study):
    """Draws of the generator's baseline quarter: the weighted 95 % interval covers the population value
    about 95 % of the time; the unweighted one rarely does (the bias is the design's, not the sample's)."""
    from study import sample as gen

    seed = gen.DEFAULT_SEED
    means = gen._calibrate_means(study, seed)
    shifts = gen._calibrate_outcomes(study, means, seed)
    pop = gen._population_draw(study, gen.BASELINE, 200_000, seed, means, shifts, pilot=False)
    true = float(((pop["overall_satisfaction"] - 1) / 4 * 100).mean())
    hits_w = hits_u = 0
    draws = 40
    for k in range(draws):
        rng = np.random.default_rng([seed, 7000 + k])
        branch = np.array(study.branch_ids)[np.arange(600) % 12]
        days = gen._working_days(gen.BASELINE)
        day = [days[i] for i in rng.integers(0, len(days), 600)]
        r = gen._respondents(study, 600, rng, means, np.zeros(600), *shifts,
                             shift=gen._design_shift(study, gen.BASELINE, branch, day))
        frame = pd.DataFrame({"branch_id": branch, "y": (r["overall_satisfaction"].to_numpy() - 1) / 4 * 100})
        e = design.estimate(design.build(frame, study, gen.BASELINE), "y")
        hits_w += e["ci_low"] <= true <= e["ci_high"]
        hits_u += e["unweighted_ci_low"] <= true <= e["unweighted_ci_high"]
    assert hits_w >= 0.85 * draws and hits_u <= 0.3 * draws, (hits_w, hits_u)


@pytest.fixture(scope="module")
def history(sample_frames, study):
    surveys = {q: f["survey"] for q, f in sample_frames.items()}
    process = {q: f["process_times"] for q, f in sample_frames.items()}
    per_quarter = trend.quarterly(surveys, study, process)
    return surveys, process, per_quarter


def _true_slope(truth, key):
    qs = truth["quarters"]
    x = np.array([int(q[:4]) * 4 + int(q[-1]) for q in qs], float)
    y = np.array([truth["tracking"]["by_quarter"][q][key] for q in qs])
    return float(np.polyfit(x, y, 1)[0])


@pytest.mark.parametrize("metric, key", [("csat_mean_0_100", "overall_satisfaction_0_100"), ("nps", "nps")])
def test_the_known_trend_is_found(history, prepared_sample, metric, key):
    _, truth = prepared_sample
    s = trend.slopes(history[2]).set_index("metric").loc[metric]
    true = _true_slope(truth, key)
    assert true > 0 and s["quarters"] == len(truth["quarters"])
    assert s["ci_low"] <= true <= s["ci_high"] and s["ci_low"] > 0 and s["p"] < 0.05


@pytest.mark.parametrize("weighted", [False, True])
def test_the_out_of_control_month_is_found(history, study, prepared_sample, weighted):
    surveys, process, _ = history
    _, truth = prepared_sample
    # the report charts the weighted monthly values (the study declares its design); unweighted ones find it too
    weights = ({q: pd.Series(design.build(s, study, q).frame["_weight"].to_numpy(), index=s.index) for q, s in surveys.items()}
               if weighted else None)
    charts = trend.control_charts(trend.monthly(surveys, study, process, weights=weights), tuple(study.tracking.chart_baseline))
    flagged = charts[charts["out_of_control"]]
    survey_flags = flagged[~flagged["metric"].isin(trend.PROCESS_MEANS)]
    shock = truth["tracking"]["out_of_control_month"]
    # the shock month, below the lower limit, on every satisfaction chart; no other survey month
    assert set(survey_flags["month"]) == {shock}
    assert {"csat_mean_0_100", "csat_top2", "nps"} <= set(survey_flags["metric"])
    assert (survey_flags["side"] == "below").all()
    # the queue log's flags are the measure's known effect: waits below the limits after its start
    start = truth["measure"]["start"][:7]
    wait = flagged[flagged["metric"] == "waiting_minutes"]
    assert (wait["month"] >= start).all() and (wait["side"] == "below").all()


def test_changes_between_consecutive_quarters(history, sample_frames, study, prepared_sample):
    surveys, process, _ = history
    _, truth = prepared_sample
    ch = trend.changes(surveys, study, process)
    csat = ch[ch["metric"] == "csat_mean_0_100"].set_index("after")
    assert len(csat) == len(truth["quarters"]) - 1
    # the shock quarter's fall and the recovery after it are significant after Holm's correction
    q_shock = next(q for q in truth["quarters"] if q.startswith(truth["tracking"]["out_of_control_month"][:4])
                   and (int(truth["tracking"]["out_of_control_month"][5:7]) - 1) // 3 + 1 == int(q[-1]))
    after = truth["quarters"][truth["quarters"].index(q_shock) + 1]
    assert csat.loc[q_shock, "difference"] < 0 and csat.loc[q_shock, "p_holm"] < 0.05
    assert csat.loc[after, "difference"] > 0 and csat.loc[after, "p_holm"] < 0.05
    assert (csat["p_holm"] >= csat["p"]).all()


def test_target_progress(history, study):
    tp = trend.target_progress(history[2], study)
    sat = tp[tp["target"] == "satisfaction"]
    assert len(sat) == 8 and set(sat["verdict"]) <= {"met", "not met", "undecided"}
    # top-2 near 0.85 every quarter against a 95 % target: not met
    assert (sat["verdict"] == "not met").all()


def test_change_target_progress_over_the_quarters_after_the_baseline(history, study, sample_frames):
    per_quarter = history[2]
    tp = trend.target_progress(per_quarter, study, baseline="2024Q2")
    nps = tp[tp["target"] == "nps_gain"].set_index("quarter")
    assert list(nps.index) == ["2024Q3", "2024Q4", "2025Q1", "2025Q2"] and (nps["baseline"] == "2024Q2").all()
    est = per_quarter[per_quarter["metric"] == "nps"].set_index("quarter")
    for q, r in nps.iterrows():
        c = design.compare_estimates(est.loc["2024Q2"], est.loc[q], True)
        assert r["estimate"] == pytest.approx(est.loc[q, "estimate"] - est.loc["2024Q2", "estimate"])
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((c["ci_low"], c["ci_high"]))
        # +20 points is far above every interval: not met
        assert r["verdict"] == "not met" and r["ci_high"] < 20
    # the relative waiting-time target needs the queue log in the baseline quarter, which 2024Q2 lacks: no rows
    assert tp[tp["target"] == "waiting_reduction"].empty
    one = trend.target_progress(per_quarter, study, baseline="2025Q1")
    w = one[one["target"] == "waiting_reduction"]
    assert list(w["quarter"]) == ["2025Q2"] and w["estimate"].iloc[0] < 0
    assert trend.target_progress(per_quarter, study)["kind"].eq("level").all()    # no baseline: level targets only
