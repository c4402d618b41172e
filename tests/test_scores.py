"""study.stats.scores against R (``Rscript tests/reference/scores.R``), the seed report's worked example
and the sample study's population truths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.stats import scores

SAT = pd.Series(np.repeat([1, 2, 3, 4, 5], [12, 25, 60, 110, 93]))
REC = pd.Series(np.repeat(np.arange(11), [3, 2, 4, 5, 6, 8, 10, 20, 25, 30, 27]))
R = {
    # prop.test(sum(sat >= 4), length(sat), correct = FALSE)$conf.int   (Wilson)
    "top2_wilson": [0.621791546251, 0.727074603916],
    # y <- (sat - 1) / 4 * 100; c(mean(y), t.test(y)$conf.int)
    "mean_0_100_t": [70.5833333333, 67.5029806921, 73.6636859746],
    # 100 * c(p - d, p, d, se, Wald low, Wald high, adjusted-Wald low, high)  (scores.R)
    "nps": [13.5714285714, 40.7142857143, 27.1428571429, 6.86686173499, 0.112626884033, 27.0302302588,
            -5.71847473874e-05, 26.5734837582],
    # 100 * sqrt(mean((s - mean(s))^2) / n), s = +1 / 0 / -1: the trinomial-mean form of the same se
    "nps_trinomial_se": [6.86686173499],
}


def close(ours, ref, tol=1e-6):
    np.testing.assert_allclose(np.asarray(ours, dtype=float), np.asarray(ref, dtype=float), rtol=0, atol=tol)


def test_csat_matches_r():
    c = scores.csat(SAT)
    assert c["n"] == 300
    close(c["top2"], 203 / 300, 1e-12)
    close([c["top2_ci_low"], c["top2_ci_high"]], R["top2_wilson"])
    close([c["mean_0_100"], c["mean_0_100_ci_low"], c["mean_0_100_ci_high"]], R["mean_0_100_t"])
    close(scores.wilson_ci(0, 10), [0.0, 0.2775327998628892], 1e-9)  # Wilson never leaves [0, 1]
    with pytest.raises(ValueError, match="outside"):
        scores.csat(pd.Series([1, 6]))


def test_nps_matches_r():
    r = scores.nps(REC)
    assert list(r.index) == ["nps", "promoters", "passives", "detractors", "n", "se", "ci_low", "ci_high",
                             "adj_ci_low", "adj_ci_high"]
    close(r[["nps"]], R["nps"][:1])
    close(100 * r[["promoters", "detractors"]], R["nps"][1:3])
    close(r[["se", "ci_low", "ci_high", "adj_ci_low", "adj_ci_high"]], R["nps"][3:])
    close(r["se"], R["nps_trinomial_se"][0])
    assert r["n"] == 140 and r["promoters"] + r["passives"] + r["detractors"] == pytest.approx(1)
    # missing answers are excluded; impossible answers are an error
    assert scores.nps(pd.concat([REC, pd.Series([np.nan])]))["n"] == 140
    with pytest.raises(ValueError, match="0..10"):
        scores.nps(pd.Series([5, 11]))
    with pytest.raises(ValueError, match="0..10"):
        scores.nps(pd.Series([5.5]))
    all_promoters = scores.nps(pd.Series([10] * 20))
    assert all_promoters["nps"] == 100 and all_promoters["adj_ci_high"] <= 100


def test_sqi_seed_worked_example():
    # Seed report: average waiting time, weight 0.2, actual 5 min, historical range [3, 10], lower is
    # better -> normalised (10 - 5) / (10 - 3) = 0.714, weighted 0.143.
    spec = pd.DataFrame([{"indicator": "waiting_minutes", "weight": 0.2, "direction": "lower", "min": 3, "max": 10}])
    res = scores.sqi(pd.DataFrame({"waiting_minutes": [5.0]}, index=["our bank"]), spec)
    assert round(res.loc["our bank", "waiting_minutes_normalised"], 3) == 0.714
    assert round(res.loc["our bank", "waiting_minutes_contribution"], 3) == 0.143
    assert round(res.loc["our bank", "sqi"], 3) == 0.143
    assert not res.loc["our bank", "clipped"]


def test_sqi_clip_flag_directions_and_errors():
    spec = pd.DataFrame([
        {"indicator": "wait", "weight": 0.5, "direction": "lower", "min": 3, "max": 10},
        {"indicator": "fpy", "weight": 0.5, "direction": "higher", "min": 0.6, "max": 1.0},
    ])
    ind = pd.DataFrame({"wait": [12.0, 3.0, 6.5, np.nan], "fpy": [0.8, 0.5, 1.0, 0.9]}, index=["a", "b", "c", "d"])
    res = scores.sqi(ind, spec)
    close(res["wait_normalised"], [0.0, 1.0, 0.5, np.nan])
    close(res["fpy_normalised"], [0.5, 0.0, 1.0, 0.75])
    close(res["sqi"], [0.25, 0.5, 0.75, np.nan])
    assert res["wait_clipped"].tolist() == [True, False, False, False]
    assert res["fpy_clipped"].tolist() == [False, True, False, False]
    assert res["clipped"].tolist() == [True, True, False, False]
    assert res.loc["d", "missing"] == "wait"
    close(res[["wait_contribution", "fpy_contribution"]].sum(axis=1).iloc[:3], res["sqi"].iloc[:3])
    with pytest.raises(ValueError, match="missing from the indicators"):
        scores.sqi(ind[["wait"]], spec)
    with pytest.raises(ValueError, match="direction"):
        scores.sqi(ind, spec.assign(direction=["lower", "up"]))
    with pytest.raises(ValueError, match="min must be smaller"):
        scores.sqi(ind, spec.assign(min=[10, 0.6]))


def test_dimension_scores_reverse_and_0_100():
    data = pd.DataFrame({"a1": [5, 4, 1, np.nan], "a2": [5, 2, 1, 3], "a3": [1, 2, 5, 3]})
    res = scores.dimension_scores(data, scales={"a": ["a1", "a2", "a3"]}, scale_range=(1, 5), reverse=["a3"])
    # respondent 0: (5 + 5 + (6 - 1)) / 3 = 5 -> 100; respondent 1: (4 + 2 + 4) / 3 -> (10/3 - 1)/4*100
    close(res["a"].iloc[:3], [5.0, 10 / 3, 1.0])
    close(res["a_0_100"].iloc[:3], [100.0, (10 / 3 - 1) / 4 * 100, 0.0])
    assert np.isnan(res["a"].iloc[3])  # listwise by default
    part = scores.dimension_scores(data, scales={"a": ["a1", "a2", "a3"]}, scale_range=(1, 5), reverse=["a3"],
                                   min_share=0.5)
    close(part["a"].iloc[3], 3.0)
    assert "0-100" in res.attrs["convention"]
    assert scores.to_0_100(4, 1, 5) == 75.0  # a 1-5 mean of 4 is 75 under the seed convention
    with pytest.raises(ValueError, match="outside"):
        scores.dimension_scores(data.assign(a2=[9, 2, 1, 3]), scales={"a": ["a1", "a2"]}, scale_range=(1, 5))
    with pytest.raises(ValueError, match="not in the data"):
        scores.dimension_scores(data, scales={"a": ["a1", "zz"]}, scale_range=(1, 5))


def test_breakdown_suppresses_small_cells():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"segment": ["mass"] * 30 + ["affluent"] * 12 + ["private_banking"] * 4,
                         "score": rng.uniform(0, 100, 46), "complaint": rng.integers(0, 2, 46)})
    out = scores.breakdown(data, "segment", ["score", "complaint"], min_cell=10, complementary=False)
    out = out.set_index("segment")
    assert out.loc["private_banking", "suppressed"] and out.loc["private_banking", "n"] == 4
    assert out.loc[["private_banking"], ["score", "complaint"]].isna().all().all()
    assert not out.loc["mass", "suppressed"]
    close(out.loc["mass", "score"], data.loc[data.segment == "mass", "score"].mean(), 1e-12)
    close(out.loc["affluent", "complaint"], data.loc[data.segment == "affluent", "complaint"].mean(), 1e-12)
    two = scores.breakdown(data.assign(ch=["branch", "online"] * 23), ["segment", "ch"], ["score"], min_cell=5,
                           complementary=False)
    assert {"segment", "ch", "n", "score", "suppressed"} <= set(two.columns)
    assert (two["suppressed"] == (two["n"] < 5)).all()
    with pytest.raises(ValueError, match="not in the data"):
        scores.breakdown(data, "branch_id", ["score"])


def test_breakdown_complementary_suppression_blocks_differencing():
    """One small group alone could be recovered as total − shown groups; the next smallest is hidden too."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"segment": ["mass"] * 30 + ["affluent"] * 12 + ["private_banking"] * 4,
                         "score": rng.uniform(0, 100, 46)})
    out = scores.breakdown(data, "segment", ["score"], min_cell=10).set_index("segment")
    assert out.loc["private_banking", "suppressed"] and out.loc["affluent", "suppressed"]
    assert not out.loc["mass", "suppressed"]
    # what differencing now reveals is the pooled mean of 16 respondents in two groups, not one group
    pooled = (data["score"].sum() - out.loc["mass", "score"] * 30) / 16
    close(pooled, data.loc[data.segment != "mass", "score"].mean(), 1e-9)
    # the rule: the suppressed pool holds >= 2 groups and >= min_cell respondents, or every group
    f = scores.complementary_suppression
    assert f(np.array([3, 4, 50]), np.array([True, True, False]), 10).tolist() == [True, True, True]   # 7 < 10
    assert f(np.array([3, 8, 50]), np.array([True, True, False]), 10).tolist() == [True, True, False]  # 11 >= 10
    assert f(np.array([30, 40]), np.array([False, False]), 10).tolist() == [False, False]              # nothing to protect
    assert f(np.array([4]), np.array([True]), 10).tolist() == [True]


def test_study_sqi_spec(study):
    spec = scores.sqi_spec(study)
    assert spec["weight"].sum() == pytest.approx(1.0)
    assert set(spec["direction"]) <= {"higher", "lower"}
    assert list(spec["indicator"]) == [s.id for s in study.sqi]


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(study, prepared_sample, sample_frames):
    _, truth = prepared_sample
    frames = sample_frames["2025Q1"]
    return study, frames["survey"], frames["process_times"], truth


def test_sample_scores_recover_population_truth(sample):
    """The sample is a stratified sample with unequal weights (study.yml sampling): the population values
    are recovered by the design-based estimates (study.stats.design); the simple-random-sample estimators of
    this module are the design module's unweighted columns (tests/test_design_sample.py shows their bias)."""
    from study.stats import design

    study, survey, process, truth = sample
    pop = truth["population"]
    est = design.estimates(survey, study, "2025Q1", level=0.999)
    dims = scores.dimension_scores(survey, study)
    for d, target in pop["dimension_scores_0_100"].items():
        assert abs(est.loc[d, "estimate"] - target) < 4 * est.loc[d, "se"], (d, est.loc[d, "estimate"], target)
        assert dims[f"{d}_0_100"].mean() == pytest.approx(est.loc[d, "unweighted"], abs=1e-9)
    assert est.loc["csat_top2", "ci_low"] <= pop["csat_top2"] <= est.loc["csat_top2", "ci_high"]
    assert est.loc["csat_mean_0_100", "ci_low"] <= pop["overall_satisfaction_0_100"] <= est.loc["csat_mean_0_100", "ci_high"]
    assert est.loc["nps", "ci_low"] <= pop["nps"] <= est.loc["nps", "ci_high"]
    sat = study.questionnaire.outcomes.overall_satisfaction.column
    c = scores.csat(survey[sat], level=0.999)
    assert c["top2"] == pytest.approx(est.loc["csat_top2", "unweighted"], abs=1e-12)
    assert c["top2_ci_low"] == pytest.approx(est.loc["csat_top2", "unweighted_ci_low"], abs=1e-12)
    assert c["mean_0_100"] == pytest.approx(est.loc["csat_mean_0_100", "unweighted"], abs=1e-9)
    n = scores.nps(survey[study.questionnaire.outcomes.recommend.column], level=0.999)
    assert n["nps"] == pytest.approx(est.loc["nps", "unweighted"], abs=1e-9)


def test_sample_study_sqi_overall_and_per_branch(sample):
    study, survey, process, _ = sample
    res = scores.study_sqi(survey, process, study)
    assert res.index[0] == "all" and set(res.index[1:]) == set(study.branch_ids)
    assert res["sqi"].between(0, 1).all()
    contrib = res[[f"{s.id}_contribution" for s in study.sqi]].sum(axis=1)
    close(contrib, res["sqi"], 1e-12)
    # the overall row is computed from all rows, not averaged over branches
    close(res.loc["all", "waiting_minutes"], process["waiting_minutes"].mean(), 1e-9)
    seg = scores.breakdown(survey, "segment", ["overall_satisfaction"], min_cell=study.min_cell_size)
    assert seg["n"].sum() == len(survey)
