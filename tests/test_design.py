"""Design-based estimates (study.stats.design) against R's survey package.

Every value beside an ``# R:`` comment is printed by tests/reference/design.R (survey 4.1.1) from
the fixture tests/data/design_bank.csv it writes: two quarters of a survey stratified by six
branches of unequal size (population 300 ... 12,500) with unequal sampling fractions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.stats import design

DATA = Path(__file__).parent / "data" / "design_bank.csv"
TOL = 1e-8


@pytest.fixture(scope="module")
def bank():
    d = pd.read_csv(DATA)
    d["csat_0_100"] = (d["overall_satisfaction"] - 1) / 4 * 100
    d["top2"] = (d["overall_satisfaction"] >= 4).astype(float)
    d["nps_points"] = np.where(d["recommend"] >= 9, 100.0, np.where(d["recommend"] <= 6, -100.0, 0.0))
    d["complaint"] = d["complaint"].astype(float)
    d["pilot"] = np.where(d["branch_id"].isin(["B1", "B2", "B3"]), "pilot", "control")
    return d


def _q(d, q):
    part = d[d["quarter"] == q]
    pop = part.groupby("branch_id")["pop"].first().to_dict()
    return design.build(part, strata="branch_id", population=pop)


def close(a, b, tol=TOL):
    return abs(a - b) <= tol * max(1.0, abs(b))


@pytest.mark.parametrize("column, r", [
    ("csat_0_100", (59.891975308642, 2.46699526979687, 1.37051836584268)),   # R: svymean(~csat_0_100, des, deff = TRUE)
    ("top2", (0.459567901234568, 0.0524163633367292, 1.54768218191906)),     # R: svymean(~top2, des, deff = TRUE)
    ("nps_points", (-32.5, 7.45503805547254, 1.19780883936931)),             # R: svymean(~nps_points, des, deff = TRUE)
    ("complaint", (0.1, 0.0386377680420853, 2.32070739510626)),              # R: svymean(~complaint, des, deff = TRUE)
    ("x1", (3.46489652777778, 0.130881609094169, 1.38963116207051)),         # R: svymean(~x1, des, deff = TRUE)
])
def test_stratified_means_with_fpc_agree_with_r(bank, column, r):
    e = design.estimate(_q(bank, "2025Q1"), column, share=column in ("top2", "complaint"))
    assert close(e["estimate"], r[0]) and close(e["se"], r[1]) and close(e["deff"], r[2])
    assert e["df"] == 134                                                     # R: degf(des)
    assert close(e["n_eff"], e["n"] / r[2])
    # the unweighted estimate is the plain mean, beside it
    part = bank[bank["quarter"] == "2025Q1"]
    assert close(e["unweighted"], part[column].mean())


def test_intervals_agree_with_r(bank):
    des = _q(bank, "2025Q1")
    top2 = design.estimate(des, "top2", share=True)
    assert close(top2["ci_low"], 0.359049149372652) and close(top2["ci_high"], 0.563487686005422)  # R: svyciprop(~top2, des, method = "logit")
    csat = design.estimate(des, "csat_0_100")
    # R: confint(svymean(~csat_0_100, des), df = degf(des))
    assert close(csat["ci_low"], 55.0126885189587) and close(csat["ci_high"], 64.7712620983253)


def test_nps_is_the_linearised_difference_of_two_shares(bank):
    e = design.estimate(_q(bank, "2025Q1"), "nps_points")
    # R: svycontrast(svymean(~I(recommend >= 9) + I(recommend <= 6), des), c(1, -1)) × 100
    assert close(e["estimate"], -32.5) and close(e["se"], 7.45503805547253)


def test_pilot_vs_control_domains_agree_with_svyttest(bank):
    r = design.compare_domains(_q(bank, "2025Q1"), "csat_0_100", "pilot")
    # R: svyttest(csat_0_100 ~ pilot, des) -> estimate, t, df, p, conf.int
    exp = (22.2761055369751, 4.93247614493647, 133, 2.38080406465329e-06, 13.3432141100433, 31.2089969639069)
    assert (r["first"], r["second"]) == ("control", "pilot")
    for k, v in zip(("difference", "t", "df", "p", "ci_low", "ci_high"), exp):
        assert close(r[k], v), (k, r[k], v)


@pytest.mark.parametrize("column, exp", [
    # R: svyttest(csat_0_100 ~ quarter, both) with strata = quarter × branch
    ("csat_0_100", (3.22881499221117, 0.883624825987623, 267, 0.377693708123984, -3.96561517225698, 10.4232451566793)),
    # R: svyttest(nps_points ~ quarter, both)
    ("nps_points", (16.92822930699, 1.43264910285109, 267, 0.153127901496242, -6.3362239456706, 40.1926825596506)),
])
def test_quarter_comparison_agrees_with_svyttest_on_the_stacked_design(bank, column, exp):
    r = design.compare_samples(_q(bank, "2025Q1"), _q(bank, "2025Q2"), column)
    for k, v in zip(("difference", "t", "df", "p", "ci_low", "ci_high"), exp):
        assert close(r[k], v), (k, r[k], v)
    # the same through svy's domain t test on the stacked design
    s = design.stack({"2025Q1": _q(bank, "2025Q1"), "2025Q2": _q(bank, "2025Q2")}, label="quarter")
    d = design.compare_domains(s, column, "quarter")
    assert close(d["difference"], exp[0]) and close(d["t"], exp[1]) and close(d["p"], exp[3])


def test_weighted_regression_agrees_with_svyglm(bank):
    fit = design.regression(_q(bank, "2025Q1"), "csat_0_100", ["x1", "x2"])
    coef = (4.12854867400639, 15.5664135042318, 0.626788082184527)  # R: coef(svyglm(csat_0_100 ~ x1 + x2, design = des))
    se = (5.45222913393224, 0.938920042751994, 1.7900729974942)     # R: SE(svyglm(...))
    for term, c, s in zip(("const", "x1", "x2"), coef, se):
        assert close(fit.loc[term, "coef"], c) and close(fit.loc[term, "se"], s)


def test_poststratification_and_raking_agree_with_r(bank):
    part = bank[bank["quarter"] == "2025Q1"].copy()
    pop = part.groupby("branch_id")["pop"].first().to_dict()
    seg = {"mass": 0.7, "affluent": 0.25, "private_banking": 0.05}
    ps = design.build(part, strata="branch_id", population=pop, rake=[{"column": "segment", "shares": seg}])
    e = design.estimate(ps, "csat_0_100")
    assert close(e["estimate"], 61.3314036071844) and close(e["se"], 2.66458373705663)  # R: svymean(~csat_0_100, postStratify(des, ~segment, seg))
    part["big"] = np.where(part["branch_id"].isin(["B1", "B4"]), "big", "small")
    rk = design.build(part, strata="branch_id", population=pop,
                      rake=[{"column": "segment", "shares": seg}, {"column": "big", "shares": {"big": 0.6, "small": 0.4}}])
    s = rk.sample()
    e = design.estimate(rk, "csat_0_100", sample=s)
    # R: svymean(~csat_0_100, rake(des1, list(~segment, ~big), ..., control = list(epsilon = 1e-12)))
    assert close(e["estimate"], 62.7545717776894, 1e-8) and close(e["se"], 2.36356842982162, 1e-8)
    e = design.estimate(rk, "top2", share=True, sample=s)
    assert close(e["estimate"], 0.495314154871076) and close(e["se"], 0.0497545944988259)  # R: svymean(~top2, rk)


def test_weight_column_design_agrees_with_r(bank):
    part = bank[bank["quarter"] == "2025Q1"].copy()
    part["w"] = part["pop"] / part.groupby("branch_id")["pop"].transform("size")
    e = design.estimate(design.build(part, weight="w"), "csat_0_100")
    # R: svymean(~csat_0_100, svydesign(ids = ~1, weights = ~w, data = q1), deff = TRUE)
    assert close(e["estimate"], 59.891975308642) and close(e["se"], 2.73329023717362) and close(e["deff"], 1.68236306999142)


def test_without_a_design_estimates_are_the_simple_random_sample_ones(bank):
    part = bank[bank["quarter"] == "2025Q1"]
    e = design.estimate(design.build(part), "csat_0_100")
    assert e["estimate"] == e["unweighted"] and e["deff"] == 1.0 and e["n_eff"] == len(part)
    assert close(e["se"], part["csat_0_100"].std(ddof=1) / np.sqrt(len(part)))


def test_design_errors_are_clear(bank):
    part = bank[bank["quarter"] == "2025Q1"]
    with pytest.raises(ValueError, match=r"strata \['B6'\] have respondents but no population size"):
        design.build(part, strata="branch_id", population={f"B{i}": 1000 for i in range(1, 6)})
    with pytest.raises(ValueError, match="more respondents than their population size"):
        design.build(part, strata="branch_id", population={f"B{i}": 10 for i in range(1, 7)})
    d = design.build(part, strata="branch_id", population={**{f"B{i}": 1000 for i in range(1, 7)}, "B7": 500})
    assert d.notes[0][0] == "strata_without_respondents" and d.notes[0][1] == ["B7"]


def test_edge_sizes(bank):
    part = bank[bank["quarter"] == "2025Q1"]
    one = design.build(part.head(1))
    assert np.isnan(design.estimate(one, "csat_0_100")["se"])
    two = design.build(part.head(2), strata=None, weight=None)
    assert design.estimate(two, "csat_0_100")["n"] == 2
    big = pd.concat([part] * 40, ignore_index=True)      # thousands of respondents
    pop = {b: 10 ** 6 for b in big["branch_id"].unique()}
    e = design.estimate(design.build(big, strata="branch_id", population=pop), "csat_0_100")
    assert e["n"] == len(big) and np.isfinite(e["se"])


def test_a_stratum_with_one_respondent_is_centred_as_r_adjust(bank):
    q1 = bank[bank["quarter"] == "2025Q1"]
    lone = pd.concat([q1[q1["branch_id"] != "B5"], q1[q1["branch_id"] == "B5"].head(1)])
    pop = q1.groupby("branch_id")["pop"].first().to_dict()
    e = design.estimate(design.build(lone, strata="branch_id", population=pop), "csat_0_100")
    # R: options(survey.lonely.psu = "adjust"); svymean(~csat_0_100, dl)
    assert close(e["estimate"], 60.1003086419753) and close(e["se"], 2.52701627423078)


def test_weighted_lmg_agrees_with_the_weighted_lm_r2_decomposition(bank):
    from study.stats import drivers

    q1 = bank[bank["quarter"] == "2025Q1"].copy()
    q1["w"] = q1["pop"] / q1.groupby("branch_id")["pop"].transform("size")
    out = drivers.relative_importance(q1, "csat_0_100", ["x1", "x2", "recommend"], n_boot=200, seed=1,
                                      weights="w", strata="branch_id").set_index("predictor")
    # R: Shapley decomposition of summary(lm(csat_0_100 ~ ..., weights = w))$r.squared over all orderings
    for p, v in zip(("x1", "x2", "recommend"), (0.395218353796166, 0.00613534032876115, 0.377583601988652)):
        assert close(out.loc[p, "importance"], v)
        assert out.loc[p, "ci_low"] <= out.loc[p, "importance"] <= out.loc[p, "ci_high"]


def test_a_declared_weight_column_passes_validation_and_weights_the_estimates(tmp_path, study):
    from study.data import validate
    from study.data.config import DEFAULT_STUDY_FILE, Sampling
    from tests.conftest import small_survey

    s = study.model_copy(update={"sampling": Sampling(weight="w")})
    raw = small_survey(s, n=40)
    raw["w"] = np.linspace(1, 5, 40).round(3).astype(str)
    raw.loc[3, "w"] = "0"          # no one stands for zero customers
    raw.loc[7, "w"] = ""           # nor for an unknown number
    qdir = tmp_path / "raw" / "2025Q1"
    qdir.mkdir(parents=True)
    raw.to_csv(qdir / "survey.csv", index=False)
    res = validate.prepare_quarter(s, DEFAULT_STUDY_FILE, tmp_path, "2025Q1")
    counts = res.datasets["survey"].counts
    assert counts["rejected_by_reason"].get("invalid_weight") == 2 and counts["kept"] == 38
    kept = pd.read_parquet(tmp_path / "processed" / "2025Q1" / "survey.parquet")
    assert "w" in kept.columns and (kept["w"] > 0).all()
    est = design.estimates(kept, s, "2025Q1").loc["csat_mean_0_100"]
    y = (kept["overall_satisfaction"] - 1) / 4 * 100
    assert est["weighted"] and close(est["estimate"], float(np.average(y, weights=kept["w"])), 1e-12)


# ---- design-based driver regression and DiD: tests/reference/design_models.R (survey 4.1.1) -------
def _q1_with_missing(bank):
    q1 = bank[bank["quarter"] == "2025Q1"].copy().reset_index(drop=True)
    q1.loc[q1.index[::7], "x2"] = np.nan            # R: q1$x2[seq(1, nrow(q1), by = 7)] <- NA
    return q1


def test_driver_regression_with_missing_answers_agrees_with_svyglm(bank):
    q1 = _q1_with_missing(bank)
    pop = q1.groupby("branch_id")["pop"].first().to_dict()
    fit = design.regression(design.build(q1, strata="branch_id", population=pop), "csat_0_100", ["x1", "x2"])
    r = {  # R: summary(svyglm(csat_0_100 ~ x1 + x2, design = des))$coefficients; confint(fit, df = fit$df.residual)
        "coef": (3.43307806692544, 15.3385565668207, 1.10230607172184),
        "se": (6.03085507453291, 1.04844239515956, 1.90084850399759),
        "t": (0.569252290843904, 14.6298515184388, 0.579902117082781),
        "p": (0.570324818168827, 9.53620779237037e-28, 0.563145398001957),
        "ci_low": (-8.51628819735781, 13.2612023555302, -2.66398157844878),
        "ci_high": (15.3824443312087, 17.4159107781113, 4.86859372189245)}
    for col, vals in r.items():
        for term, v in zip(("const", "x1", "x2"), vals):
            assert close(fit.loc[term, col], v), (col, term, fit.loc[term, col], v)
    assert (fit["df"] == 112).all()                  # R: fit$df.residual (120 complete rows − 6 strata − 3 + 1)
    f = fit.attrs["fit"]
    # R: regTermTest(fit, ~x1 + x2) -> F, df, ddf, p
    assert close(f["f"], 111.506511391137) and f["f_df1"] == 2 and f["f_df2"] == 112 and close(f["f_p"], 2.25296611359027e-27)
    assert close(f["r2"], 0.65709535668792) and f["n"] == 120   # R: 1 − Σw e² / Σw (y − ȳ_w)² over the complete rows


def test_driver_regression_with_a_lonely_stratum_agrees_with_r_adjust(bank):
    q1 = _q1_with_missing(bank)
    pop = q1.groupby("branch_id")["pop"].first().to_dict()
    lone = pd.concat([q1[q1["branch_id"] != "B5"], q1[q1["branch_id"] == "B5"].iloc[[1]]])
    fit = design.regression(design.build(lone, strata="branch_id", population=pop), "csat_0_100", ["x1", "x2"])
    # R: options(survey.lonely.psu = "adjust"); coef(fitb); SE(fitb)
    for term, c, s in zip(("const", "x1", "x2"), (3.22248037997764, 15.2284783861555, 1.34935494926357),
                          (6.07032374269369, 1.05872086987098, 1.89358330267176)):
        assert close(fit.loc[term, "coef"], c) and close(fit.loc[term, "se"], s)


def _stacked(bank):
    des = {}
    for q in ("2025Q1", "2025Q2"):
        part = bank[bank["quarter"] == q].copy()
        part["treated"] = part["branch_id"].isin(["B1", "B2", "B3"]).astype(float)
        part["post"] = float(q == "2025Q2")
        part["dom"] = part["branch_id"] != "B6"            # B6 is in neither group
        des[q] = design.build(part, strata="branch_id", population=part.groupby("branch_id")["pop"].first().to_dict())
    return design.stack(des, label="quarter")


@pytest.mark.parametrize("column, r", [
    # R: fit <- svyglm(y ~ treated * post, design = subset(ds, branch_id != "B6")), ds stratified by quarter x branch
    #    with fpc; summary(fit)$coefficients["treated:post", ], fit$df.residual, confint(fit, df = fit$df.residual)
    ("csat_0_100", (7.89300213931496, 6.89084402174917, 1.14543329008794, 0.253235867081386, 227, -5.68519592197845,
                    21.4712002006084)),
    ("top2", (0.133243437256552, 0.138494508450636, 0.962084625211291, 0.337030804087585, 227, -0.139655769315078,
              0.406142643828182)),
])
def test_did_on_the_stacked_design_agrees_with_svyglm(bank, column, r):
    d = design.did(_stacked(bank), column, treated="treated", post="post", domain="dom")
    got = (d["estimate"], d["se"], d["t"], d["p"], d["df"], d["ci_low"], d["ci_high"])
    assert all(close(a, b) for a, b in zip(got, r)), (got, r)
    assert d["n_obs"] == 240 and d["n_strata"] == 10
    # the cell means are the weighted means: their difference of differences is the estimate (saturated model)
    assert close((d["pilot_after"] - d["pilot_before"]) - (d["control_after"] - d["control_before"]), r[0])


def test_did_without_a_cell_gives_no_test(bank):
    st = _stacked(bank)
    st.frame.loc[(st.frame["quarter"] == "2025Q2") & (st.frame["treated"] == 1), "csat_0_100"] = np.nan
    r = design.did(st, "csat_0_100", treated="treated", post="post", domain="dom")
    assert np.isnan(r["pilot_after"]) and np.isnan(r["p"]) and np.isfinite(r["control_after"])


def test_pilot_against_control_in_a_domain_agrees_with_svyttest_on_a_subset(bank):
    q2 = bank[bank["quarter"] == "2025Q2"].copy()
    q2["grp"] = np.where(q2["branch_id"].isin(["B1", "B2", "B3"]), "pilot",
                         np.where(q2["branch_id"].isin(["B4", "B5"]), "control", "other"))
    q2["dom"] = q2["grp"] != "other"
    pop = q2.groupby("branch_id")["pop"].first().to_dict()
    r = design.compare_domains(design.build(q2, strata="branch_id", population=pop), "csat_0_100", "grp", domain="dom")
    # R: svyttest(csat_0_100 ~ grp, subset(des2, grp != "other")): estimate, t, df, p, conf.int
    exp = (31.1632752266613, 6.30913256874418, 114, 5.52264840909752e-09, 21.378378882978, 40.9481715703445)
    got = (r["difference"], r["t"], r["df"], r["p"], r["ci_low"], r["ci_high"])
    assert all(close(a, b) for a, b in zip(got, exp)), (got, exp)
    assert (r["first"], r["second"]) == ("control", "pilot")


def test_did_with_a_stratum_of_one_respondent_agrees_with_r_adjust(bank):
    lone = bank[(bank["branch_id"] != "B5") | (bank["quarter"] != "2025Q2")]
    first_b5 = bank[(bank["branch_id"] == "B5") & (bank["quarter"] == "2025Q2")].iloc[[0]]
    st = _stacked(pd.concat([lone, first_b5]).sort_index())
    d = design.did(st, "csat_0_100", treated="treated", post="post", domain="dom")
    # R: options(survey.lonely.psu = "adjust"); summary(svyglm(csat_0_100 ~ treated * post, subset(dsl, branch_id != "B6")))
    exp = (7.39378217051633, 6.99258891467159, 1.0573740657059, 0.291538624626895, 213)
    got = (d["estimate"], d["se"], d["t"], d["p"], d["df"])
    assert all(close(a, b) for a, b in zip(got, exp)), (got, exp)


def test_before_after_within_the_pilot_branches_agrees_with_svyttest_on_the_stacked_design(bank):
    st = _stacked(bank)
    st.frame["pilot_rows"] = st.frame["treated"] == 1
    r = design.compare_domains(st, "csat_0_100", "post", domain="pilot_rows")
    # R: svyttest(csat_0_100 ~ post, subset(ds, treated == 1)): estimate, t, df, p, conf.int
    exp = (8.60070605722782, 2.41266483515687, 143, 0.0171032316814876, 1.55416220568438, 15.6472499087713)
    got = (r["difference"], r["t"], r["df"], r["p"], r["ci_low"], r["ci_high"])
    assert all(close(a, b) for a, b in zip(got, exp)), (got, exp)
