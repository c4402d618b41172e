"""study.effects against R (tests/reference/effects.R, printed values pasted below with the R call)
and the sample study's known pilot effects (data/raw/truth.json)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import effects
from study.effects import compare

ROOT = Path(__file__).resolve().parents[1]
# R's sleep data: extra hours of sleep; group 1 = before, group 2 = after
BEFORE = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
AFTER = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])
approx = pytest.approx


def test_welch_and_student_match_t_test():
    r = compare(BEFORE, AFTER)
    # R: t.test(after, before): t = 1.860813467, df = 17.77647352, p = 0.07939414019, CI [-0.2054832307, 3.3654832307]
    assert r["test"] == "welch" and r["rule"] == "C3"
    assert r["statistic"] == approx(1.860813467, rel=1e-9)
    assert r["df"] == approx(17.77647352, rel=1e-9)
    assert r["p"] == approx(0.07939414019, rel=1e-9)
    assert (r["ci_low"], r["ci_high"]) == (approx(-0.2054832307, rel=1e-9), approx(3.3654832307, rel=1e-9))
    assert r["estimate"] == approx(2.33 - 0.75)
    # R: effectsize::hedges_g(after, before): 0.7969352392, CI [-0.09140771683, 1.665171917]
    # (effectsize finds the ncp limits with optim(); we solve them exactly, hence 1e-6)
    assert r["effect_size"] == approx(0.7969352392, rel=1e-9)
    assert r["effect_ci_low"] == approx(-0.09140771683, abs=1e-6)
    assert r["effect_ci_high"] == approx(1.665171917, abs=1e-6)
    # R: wilcox.test(after, before): W = 74.5, p-value = 0.06932757543 (ties: normal approx.)
    assert r["alt_test"] == "mann_whitney"
    assert r["alt_statistic"] == 74.5 and r["alt_p"] == approx(0.06932757543, rel=1e-9)
    # R: effectsize::rank_biserial(after, before): 0.49, CI [0.0175008214, 0.7835952918]
    assert r["alt_effect_size"] == approx(0.49)
    assert r["alt_effect_ci_low"] == approx(0.0175008214, rel=1e-8)
    assert r["alt_effect_ci_high"] == approx(0.7835952918, rel=1e-9)
    s = compare(BEFORE, AFTER, test="student")
    # R: t.test(after, before, var.equal = TRUE): df = 18, p = 0.07918671422, CI [-0.2038740323, 3.3638740323]
    assert s["rule"] == "F" and s["df"] == 18 and s["p"] == approx(0.07918671422, rel=1e-9)
    assert (s["ci_low"], s["ci_high"]) == (approx(-0.2038740323, rel=1e-9), approx(3.3638740323, rel=1e-9))


def test_paired_match_t_test_and_signed_rank():
    r = compare(BEFORE, AFTER, paired=True, test="paired_t")
    # R: t.test(after, before, paired = TRUE): t = 4.062127683, df = 9, p = 0.002832890197, CI [0.7001142367, 2.4598857633]
    assert r["statistic"] == approx(4.062127683, rel=1e-9) and r["df"] == 9
    assert r["p"] == approx(0.002832890197, rel=1e-9)
    assert (r["ci_low"], r["ci_high"]) == (approx(0.7001142367, rel=1e-9), approx(2.4598857633, rel=1e-9))
    # R: effectsize::cohens_d(after, before, paired = TRUE): 1.284557563, CI [0.4146276677, 2.118016509]
    assert r["effect_size"] == approx(1.284557563, rel=1e-9)
    assert r["effect_ci_low"] == approx(0.4146276677, abs=1e-6)
    assert r["effect_ci_high"] == approx(2.118016509, abs=1e-6)
    # R: wilcox.test(after, before, paired = TRUE): V = 45, p-value = 0.009090698016 (zero & ties: normal)
    assert r["alt_statistic"] == 45 and r["alt_p"] == approx(0.009090698016, rel=1e-9)
    # R: effectsize::rank_biserial(after, before, paired = TRUE): 1 (all non-zero differences positive)
    assert r["alt_effect_size"] == approx(1.0)
    # the rule: 10 pairs, skewed differences -> Wilcoxon headline
    auto = compare(BEFORE, AFTER, paired=True)
    assert auto["test"] == "wilcoxon" and auto["rule"] == "P2" and "rule P2" in auto["assumption_notes"]


def test_wilcoxon_exact_cases():
    # the examples of ?wilcox.test (no ties -> exact distribution)
    x = np.array([0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46])
    y = np.array([1.15, 0.88, 0.90, 0.74, 1.21])
    r = compare(y, x, test="mann_whitney")
    # R: wilcox.test(x, y): W = 35, p-value = 0.2544122544
    assert r["statistic"] == 35 and r["p"] == approx(0.2544122544, rel=1e-9)
    # R: effectsize::rank_biserial(x, y): 0.4, CI [-0.213153496, 0.7871026771]
    assert r["effect_size"] == approx(0.4)
    assert (r["effect_ci_low"], r["effect_ci_high"]) == (approx(-0.213153496, rel=1e-8), approx(0.7871026771, rel=1e-9))
    xp = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
    yp = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])
    r = compare(xp, yp, paired=True, test="wilcoxon")
    # R: wilcox.test(yp, xp, paired = TRUE): V = 5, p-value = 0.0390625
    assert r["statistic"] == 5 and r["p"] == approx(0.0390625, rel=1e-12)
    # R: effectsize::rank_biserial(yp, xp, paired = TRUE): -0.7777777778, CI [-0.9441559019, -0.2953631293]
    assert r["effect_size"] == approx(-0.7777777778, rel=1e-9)
    assert (r["effect_ci_low"], r["effect_ci_high"]) == (approx(-0.9441559019, rel=1e-9), approx(-0.2953631293, rel=1e-9))
    # n >= 50, no ties: R switches to the normal approximation with continuity correction
    xl = np.arange(1, 61) ** 1.5 / 10
    yl = np.arange(1, 56) ** 1.45 / 10 + 0.05
    r = compare(yl, xl, test="mann_whitney")
    # R: wilcox.test(xl, yl): W = 1953, p-value = 0.09032708692
    assert r["statistic"] == 1953 and r["p"] == approx(0.09032708692, rel=1e-9)


def test_two_proportions_match_prop_test():
    r = compare((BEFORE > 1).astype(int), (AFTER > 1).astype(int), kind="binary")
    # R: prop.test(c(7, 3), c(10, 10)): X-squared = 1.8, p = 0.1797124949, CI [-0.1016730891, 0.9016730891]
    assert r["test"] == "two_proportion" and r["rule"] == "B1"
    assert r["statistic"] == approx(1.8, rel=1e-12) and r["p"] == approx(0.1797124949, rel=1e-9)
    assert (r["ci_low"], r["ci_high"]) == (approx(-0.1016730891, rel=1e-9), approx(0.9016730891, rel=1e-9))
    # R: effectsize::cohens_h(matrix(c(7, 3, 3, 7), 2)): 0.8230336921, CI [-0.05348884844, 1.699556233]
    assert r["effect_size"] == approx(0.8230336921, rel=1e-9)
    assert (r["effect_ci_low"], r["effect_ci_high"]) == (approx(-0.05348884844, rel=1e-8), approx(1.699556233, rel=1e-9))
    r = compare(np.r_[np.ones(65), np.zeros(53)], np.r_[np.ones(83), np.zeros(37)], kind="binary")
    # R: prop.test(c(83, 65), c(120, 118)): X-squared = 4.43620925, p = 0.03518428698, CI [0.01042528782, 0.27121313026]
    assert r["statistic"] == approx(4.43620925, rel=1e-8) and r["p"] == approx(0.03518428698, rel=1e-9)
    assert (r["ci_low"], r["ci_high"]) == (approx(0.01042528782, rel=1e-8), approx(0.27121313026, rel=1e-9))
    # R: effectsize::cohens_h(matrix(c(83, 37, 65, 53), 2)): 0.2915316103, CI [0.03743144771, 0.5456317728]
    assert r["effect_size"] == approx(0.2915316103, rel=1e-9)
    assert (r["effect_ci_low"], r["effect_ci_high"]) == (approx(0.03743144771, rel=1e-8), approx(0.5456317728, rel=1e-9))
    with pytest.raises(ValueError, match="0/1"):
        compare([0, 1, 2], [1, 0, 1], kind="binary")


def test_nps_difference_by_hand():
    before = np.r_[np.full(30, 10), np.full(40, 8), np.full(30, 3)]   # NPS 0
    after = np.r_[np.full(50, 9), np.full(30, 7), np.full(20, 0)]     # NPS 30
    r = compare(before, after, kind="nps")
    se_b = 100 * math.sqrt((0.3 + 0.3 - 0.0) / 100)
    se_a = 100 * math.sqrt((0.5 + 0.2 - 0.09) / 100)
    se = math.sqrt(se_a ** 2 + se_b ** 2)
    assert r["estimate"] == approx(30) and r["se"] == approx(se)
    assert r["ci_low"] == approx(30 - 1.959963985 * se, rel=1e-8)
    assert r["p"] == approx(2 * (1 - __import__("scipy").stats.norm.cdf(30 / se)))


def test_rule_choice():
    rng = np.random.default_rng(1)
    skewed_small = compare(rng.lognormal(0, 1.2, 20), rng.lognormal(0.3, 1.2, 20))
    assert skewed_small["test"] == "mann_whitney" and skewed_small["rule"] == "C2"
    big = compare(rng.lognormal(0, 1.2, 200), rng.lognormal(0.3, 1.2, 200))
    assert big["test"] == "welch" and big["rule"] == "C1" and "skew" in big["assumption_notes"]
    with pytest.raises(ValueError, match="does not apply"):
        compare(BEFORE, AFTER, test="paired_t")
    with pytest.raises(ValueError, match="equal lengths"):
        compare(BEFORE, AFTER[:5], paired=True)


def test_adjust_p_and_power_match_r():
    p = [0.01, 0.04, 0.03, 0.005, 0.2, np.nan]
    # R: p.adjust(p, "holm") = 0.040 0.090 0.090 0.025 0.200 NA; p.adjust(p, "BH") = 0.025 0.050 0.050 0.025 0.200 NA
    np.testing.assert_allclose(effects.adjust_p(p, "holm"), [0.04, 0.09, 0.09, 0.025, 0.2, np.nan])
    np.testing.assert_allclose(effects.adjust_p(p, "bh"), [0.025, 0.05, 0.05, 0.025, 0.2, np.nan])
    r = compare(BEFORE, AFTER)
    pw, mde = effects.power_mde(r)
    # R: power.t.test(n = 10, delta = 0.7969352392, sd = 1, strict = TRUE)$power = 0.3925809772
    assert pw == approx(0.3925809772, rel=1e-6)
    # R: power.t.test(n = 10, power = 0.8, sd = 1, strict = TRUE)$delta = 1.324943563 (in SD units)
    sd = r["estimate"] / r["effect_size"]
    assert mde == approx(1.324943563 * sd, rel=1e-5)
    pw, _ = effects.power_mde(compare(BEFORE, AFTER, paired=True, test="paired_t"))
    # R: power.t.test(n = 10, delta = 1.284557563, sd = 1, type = "one.sample", strict = TRUE)$power = 0.9496049955
    assert pw == approx(0.9496049955, rel=1e-6)


# --- difference-in-differences ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def chick():
    cw = pd.read_csv(ROOT / "tests" / "data" / "chickweight.csv")
    cw["group"] = np.where(cw["Diet"].isin([3, 4]), "pilot", "control")
    return cw


POST = [12, 14, 16, 18, 20, 21]


def test_did_cluster_se_matches_r_and_statsmodels(chick):
    d = effects.did(chick, "weight", unit="Chick", group="group", period="Time", post=POST)
    # R (by hand, = sandwich::vcovCL(type = "HC1")): est = 35.80814536, se = 11.57705623, t = 3.093026816,
    # p(t, G-1) = 0.003267636853, CI [12.54317985, 59.07311086], G = 50, N = 578
    assert d["estimate"] == approx(35.80814536, rel=1e-9)
    assert d["se"] == approx(11.57705623, rel=1e-9)
    assert d["p"] == approx(0.003267636853, rel=1e-8)
    assert (d["ci_low"], d["ci_high"]) == (approx(12.54317985, rel=1e-9), approx(59.07311086, rel=1e-9))
    assert d["n_clusters"] == 50 and d["n_obs"] == 578 and np.isnan(d["boot_p"])   # 50 clusters: no bootstrap
    # statsmodels' cluster covariance gives the same SE
    import statsmodels.formula.api as smf

    df = chick.assign(treated=chick["group"].eq("pilot").astype(float), post=chick["Time"].isin(POST).astype(float))
    df["tp"] = df["treated"] * df["post"]
    sm = smf.ols("weight ~ treated + C(Time) + tp", df).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df["Chick"])[0]})
    assert sm.bse["tp"] == approx(d["se"], rel=1e-10)
    assert d["pre_periods"] == 6 and d["pretrend_p"] < 0.05      # diets diverge early in ChickWeight
    sub = chick[chick["Chick"].isin(list(range(1, 6)) + list(range(21, 31)) + list(range(41, 46)))]
    d = effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=1, n_boot=999)
    # R: est = 2.312962963, se = 14.67562049, p(t, 19) = 0.8764303115, G = 20
    assert d["estimate"] == approx(2.312962963, rel=1e-9) and d["se"] == approx(14.67562049, rel=1e-9)
    assert d["p"] == approx(0.8764303115, rel=1e-8)
    assert d["n_clusters"] == 20 and d["boot_weights"] == "rademacher" and 0.5 < d["boot_p"] <= 1


def test_wild_cluster_bootstrap_equals_refitting_loop(chick):
    sub = chick[chick["Chick"].isin(list(range(1, 5)) + list(range(41, 45)))].copy()
    B = 50
    d = effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=7, n_boot=B)
    assert d["boot_weights"] == "webb"                                  # 8 clusters
    # the naive algorithm: impose delta = 0, perturb residuals by cluster, refit, recompute the t
    codes, _ = pd.factorize(sub["Chick"])
    G = codes.max() + 1
    rng = np.random.default_rng(7)
    W = rng.choice(np.array([-math.sqrt(1.5), -1, -math.sqrt(0.5), math.sqrt(0.5), 1, math.sqrt(1.5)]), size=(G, B))
    times = sorted(sub["Time"].unique())
    tr = sub["group"].eq("pilot").to_numpy(float)
    X = np.column_stack([np.ones(len(sub)), tr] + [(sub["Time"] == t).to_numpy(float) for t in times[1:]]
                        + [tr * sub["Time"].isin(POST).to_numpy(float)])
    y = sub["weight"].to_numpy(float)

    def t_stat(yy):
        b = np.linalg.lstsq(X, yy, rcond=None)[0]
        e = yy - X @ b
        XtXi = np.linalg.inv(X.T @ X)
        S = np.zeros((G, X.shape[1]))
        np.add.at(S, codes, X * e[:, None])
        n, k = X.shape
        V = G / (G - 1) * (n - 1) / (n - k) * XtXi @ S.T @ S @ XtXi
        return b[-1] / math.sqrt(V[-1, -1])

    t0 = t_stat(y)
    assert t0 == approx(d["t"], rel=1e-9)
    Xr = X[:, :-1]
    yr = Xr @ np.linalg.lstsq(Xr, y, rcond=None)[0]
    ur = y - yr
    tstars = np.array([t_stat(yr + ur * W[codes, b]) for b in range(B)])
    assert d["boot_p"] == approx(np.mean(np.abs(tstars) >= abs(t0)), abs=1e-12)


def test_pretrend_detects_diverging_groups():
    rng = np.random.default_rng(4)
    rows = []
    for unit in range(12):
        treated = unit < 6
        for per in range(5):            # periods 0-3 pre, 4 post
            slope = 1.0 if treated else 0.0
            for _ in range(30):
                rows.append({"u": unit, "g": "pilot" if treated else "control", "t": per,
                             "y": slope * per + 2 * (treated and per == 4) + rng.normal(0, 1) + rng.normal(0, 0.1)})
    df = pd.DataFrame(rows)
    bad = effects.did(df, "y", unit="u", group="g", period="t", post=[4], n_boot=199, seed=1)
    assert bad["pretrend_p"] < 0.01 and "diverged" in bad["notes"]
    df["y"] = df["y"] - np.where(df["g"] == "pilot", df["t"], 0)
    good = effects.did(df, "y", unit="u", group="g", period="t", post=[4], n_boot=199, seed=1)
    assert good["pretrend_p"] > 0.05
    assert good["ci_low"] <= 2 <= good["ci_high"] and good["boot_p"] < 0.05


# --- study metrics ----------------------------------------------------------------------------------
def test_dimension_score_reverse_codes(study):
    items = study.item_ids
    row = {i: 5 for i in items}
    for r in study.reverse_items:
        row[r] = 1
    sv = pd.DataFrame([row, {i: 3 for i in items}])
    sv["branch_id"] = "B01"
    sv["interview_date"] = "2025-01-10"
    for dim in study.dimension_ids:
        v = effects.metric_values(study, {"survey": sv}, dim)["value"].to_numpy()
        assert v == approx([100.0, 50.0])


# --- the sample study's truth -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(study, prepared_sample, sample_frames):
    _, truth = prepared_sample
    base = sample_frames[truth["baseline"]]
    follow = sample_frames[[q for q in truth["quarters"] if q != truth["baseline"]][0]]
    return truth, base, follow, effects.evaluate(study, base, follow, seed=1)


def test_sample_pilot_effect_found_and_controls_unchanged(sample):
    truth, _, _, table = sample
    t = table.set_index(["metric", "analysis"])
    m = truth["measure"]
    did_w = t.loc[("waiting_minutes", "difference-in-differences")]
    # the pilot effect is found (Holm-adjusted, wild-bootstrap p) and its true size is in the DiD CI
    assert did_w["p_holm"] < 0.05 and did_w["boot_p"] < 0.05 and did_w["estimate"] < 0
    assert did_w["ci_low"] <= m["waiting_minutes_did"] <= did_w["ci_high"]
    assert t.loc[("waiting_minutes", "pilot before/after"), "p_holm"] < 0.05
    eff = t.loc[("efficiency", "difference-in-differences")]
    assert eff["ci_low"] <= m["survey_effects_pilot"]["efficiency"] <= eff["ci_high"] and eff["p_holm"] < 0.05
    # every true survey effect lies in its DiD CI
    for metric, true in m["survey_effects_pilot"].items():
        row = t.loc[(metric, "difference-in-differences")]
        assert row["ci_low"] <= true <= row["ci_high"], metric
    # the control branches show no significant change on any metric
    controls = table[table["analysis"] == "control before/after"]
    assert len(controls) == 6 and (controls["p_holm"] >= 0.05).all() and (controls["p"] >= 0.05).all()
    assert table[["p_holm", "p_bh", "power", "mde"]].notna().all().all()
    assert (table["p_bh"] <= table["p_holm"] + 1e-12).all()


def test_sample_targets(sample, study):
    truth, base, follow, _ = sample
    tab = effects.target_attainment(study, follow, base).set_index("target")
    assert set(tab.index) == {t.id for t in study.targets}
    for _, r in tab.iterrows():
        assert r["ci_low"] <= r["observed"] <= r["ci_high"]
        if r["operator"] == ">=":
            expected = "met" if r["ci_low"] >= r["target_value"] else "not met" if r["ci_high"] < r["target_value"] else "not distinguishable"
        else:
            expected = "met" if r["ci_high"] <= r["target_value"] else "not met" if r["ci_low"] > r["target_value"] else "not distinguishable"
        assert r["status"] == expected
    # csat top-2 of the sample population is 0.86, far from the 95 % target
    assert tab.loc["satisfaction", "status"] == "not met"
    assert tab.loc["waiting_reduction", "note"].startswith("before")
