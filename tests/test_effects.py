"""study.stats.effects against R (tests/reference/effects.R, printed values pasted below with the R call)
and the sample study's known pilot effects (data/raw/truth.json)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import metrics as mx
from study.stats import effects
from study.stats.effects import compare

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


def test_adjust_p_vectorised_equals_r_and_statsmodels():
    """adjust_p is written out (no gc.collect() per call): the same numbers as R p.adjust and statsmodels."""
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.9, 0.0001, 0.5, 0.03]   # ties included
    # R: p.adjust(p, "holm")
    np.testing.assert_allclose(effects.adjust_p(p, "holm"), [0.08, 0.21, 0.21, 0.045, 0.6, 0.21, 1, 0.001, 1, 0.21],
                               rtol=1e-14)
    # R: p.adjust(p, "BH")
    np.testing.assert_allclose(effects.adjust_p(p, "bh"), [0.0333333333333333, 0.0571428571428571, 0.0571428571428571,
                                                          0.025, 0.25, 0.0571428571428571, 0.9, 0.001,
                                                          0.555555555555556, 0.0571428571428571], rtol=1e-13)
    rng = np.random.default_rng(11)
    for m in (1, 2, 3, 7, 40, 500):
        q = rng.random(m) ** 3
        q[rng.integers(m)] = q[0]
        for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
            np.testing.assert_allclose(effects.adjust_p(q, ours), multipletests(q, method=theirs)[1], rtol=1e-13, atol=0)


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


def _wildboottest(sub: pd.DataFrame, weights: str, seed: int, B: int):
    """The restricted wild cluster bootstrap (WCR11, CR1) of the treated×post coefficient by the
    ``wildboottest`` package: (t, t* of every draw, its p). Clusters are numbered in order of first
    appearance, as study.stats.effects numbers them, so that weight row g belongs to the same cluster."""
    from wildboottest.wildboottest import WildboottestCL

    times = sorted(sub["Time"].unique())
    tr = sub["group"].eq("pilot").to_numpy(float)
    X = np.column_stack([np.ones(len(sub)), tr] + [(sub["Time"] == t).to_numpy(float) for t in times[1:]]
                        + [tr * sub["Time"].isin(POST).to_numpy(float)])
    R = np.zeros(X.shape[1])
    R[-1] = 1
    wb = WildboottestCL(X=X, Y=sub["weight"].to_numpy(float), cluster=pd.factorize(sub["Chick"])[0], R=R, B=B, seed=seed,
                        parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    wb.get_weights(weights_type=weights)
    for step in (wb.get_numer, wb.get_denom, wb.get_tboot, wb.get_vcov, wb.get_tstat, wb.get_pvalue):
        step()
    return float(np.ravel(wb.t_stat)[0]), np.ravel(wb.t_boot), float(wb.pvalue), wb.full_enumeration


@pytest.mark.parametrize("chicks, weights, seed", [
    (list(range(1, 5)) + list(range(41, 45)), "webb", 7),                                       # G = 8
    (list(range(1, 6)) + list(range(21, 31)) + list(range(41, 46)), "rademacher", 1),          # G = 20
    (list(range(1, 7)) + list(range(15, 21)) + list(range(31, 36)) + list(range(45, 51)), "rademacher", 11),  # G = 23
])
def test_wild_cluster_bootstrap_equals_wildboottest_same_seed(chick, chicks, weights, seed):
    # The same seed gives the same weights: both draw default_rng(seed).choice(values, G x B) in the same
    # order (wildboottest reshapes G*B draws row-major), so t* agree draw by draw and the p-values are
    # equal, not just close.
    sub = chick[chick["Chick"].isin(chicks)]
    B = 999
    d = effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=seed, n_boot=B, weights=weights)
    t, tstar, p, enumerated = _wildboottest(sub, weights, seed, B)
    assert not enumerated and d["n_boot"] == B and d["boot_weights"] == weights
    assert d["t"] == approx(t, rel=1e-12)
    assert d["boot_p"] == p                                         # identical, e.g. 0.8748748748748749 for G = 20
    assert 0 < p < 1 and d["boot_p"] == np.mean(np.abs(tstar) >= abs(t) * (1 - 1e-9))
    # another seed gives other draws (the test would notice seeds being ignored)
    assert effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=seed + 1, n_boot=B,
                       weights=weights)["boot_p"] != p


def test_wild_cluster_bootstrap_full_enumeration_as_wildboottest(chick):
    # Rademacher weights with 2^G < B: both enumerate all 2^G sign vectors (no randomness; the seed does
    # not matter). The t* distributions agree vector by vector; the p-values differ only in the two sign
    # vectors +1 and -1, which give back the sample itself (|t*| = |t| in exact arithmetic): p counts
    # them (|t*| >= |t|, as boottest), wildboottest counts |t*| > |t| and rounding decides for it.
    sub = chick[chick["Chick"].isin(list(range(1, 5)) + list(range(41, 45)))]     # G = 8: 256 sign vectors
    d = effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=3, n_boot=999,
                    weights="rademacher")
    t, tstar, p, enumerated = _wildboottest(sub, "rademacher", 12345, 999)
    assert enumerated and len(tstar) == d["n_boot"] == 256 and "all 256 sign vectors" in d["notes"]
    ties = np.isclose(np.abs(tstar), abs(t), rtol=1e-9, atol=0)
    assert ties.sum() == 2
    assert d["boot_p"] == np.mean(np.abs(tstar) >= abs(t) * (1 - 1e-9)) == (np.sum(np.abs(tstar[~ties]) > abs(t)) + 2) / 256
    assert abs(d["boot_p"] - p) <= 2 / 256
    assert d["boot_p"] == effects.did(sub, "weight", unit="Chick", group="group", period="Time", post=POST, seed=99,
                                      n_boot=999, weights="rademacher")["boot_p"]


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
    follow = sample_frames[[q for q in truth["quarters"] if q > truth["baseline"]][0]]
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
    # every true survey effect lies in its DiD CI, simultaneously: the 95 % t(G − 1) intervals widened to
    # Bonferroni's over the survey effects (four 95 % intervals all covering is not a 95 % event; in the
    # sample the NPS effect, estimated with power ~0.15, falls just outside its own 95 % interval)
    from scipy import stats as st

    k = len(m["survey_effects_pilot"])
    for metric, true in m["survey_effects_pilot"].items():
        row = t.loc[(metric, "difference-in-differences")]
        widen = st.t.ppf(1 - 0.025 / k, row["df"]) / st.t.ppf(0.975, row["df"])
        half = (row["ci_high"] - row["ci_low"]) / 2 * widen
        assert abs(true - (row["ci_low"] + row["ci_high"]) / 2) <= half, metric
    # the control branches show no significant change on any metric
    controls = table[table["analysis"] == "control before/after"]
    assert len(controls) == 6 and (controls["p_holm"] >= 0.05).all() and (controls["p"] >= 0.05).all()
    assert table[["p_holm", "p_bh", "power", "mde"]].notna().all().all()
    assert (table["p_bh"] <= table["p_holm"] + 1e-12).all()


def test_sample_targets(sample, study):
    truth, base, follow, _ = sample
    tab = effects.target_attainment(study, follow, base).set_index("target")
    # targets on the request log's metrics are decided by study.stats.requests (tests/test_requests.py), channel coverage by
    # study.stats.point_service (tests/test_point_service.py)
    assert set(tab.index) == {t.id for t in study.targets if mx.lookup(t.metric, study).source not in ("requests", "coverage")}
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


# --- power and small groups: never a crash ----------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _row(test, n1, n2, rng):
    """A compare()-shaped row for groups of n1 (before) and n2 (after), without running the test itself."""
    g = float(rng.normal(0, 0.5))
    p0 = float(rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    return pd.Series({"test": test, "n_before": n1, "n_after": n2, "effect_size": g if test != "two_proportion" else 2 * g,
                      "effect_size_name": {"welch": "Hedges' g", "paired_t": "d_z"}.get(test, "Cohen's h"),
                      "alt_effect_size": g, "estimate": g * 1.3, "before_value": p0, "after_value": p0,
                      "ci_low": -abs(g) - 1, "ci_high": abs(g) + 1, "se": np.nan, "df": np.nan})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n1=st.integers(1, 2000), n2=st.integers(1, 2000), test=st.sampled_from(["welch", "mann_whitney", "paired_t",
                                                                               "two_proportion", "nps", "did_cluster"]),
       seed=st.integers(0, 2 ** 16))
def test_property_power_mde_never_raises(n1, n2, test, seed):
    pw, mde = effects.power_mde(_row(test, n1, n2, np.random.default_rng(seed)))
    for v in (pw, mde):
        assert isinstance(v, float) and (np.isnan(v) or np.isfinite(v))
    assert np.isnan(pw) or 0 <= pw <= 1
    if min(n1, n2) < 2:
        assert np.isnan(pw) and np.isnan(mde)


def test_power_mde_issue_pair_and_every_size_from_real_comparisons():
    rng = np.random.default_rng(10)
    # the pair of the issue: statsmodels' solve_power returns array([d]) here
    pw, mde = effects.power_mde(compare(rng.normal(0, 1, 146), rng.normal(0.2, 1, 132)))
    assert 0 < pw < 1 and mde > 0
    pairs = [(2, 2), (2, 3), (3, 2), (146, 132)] + [tuple(x) for x in rng.integers(2, 2001, size=(40, 2))]
    for n1, n2 in pairs:
        for kind, draw in (("continuous", lambda n: rng.normal(0, 1, n)), ("binary", lambda n: rng.integers(0, 2, n)),
                           ("nps", lambda n: rng.integers(0, 11, n))):
            r = compare(draw(n1), draw(n2), kind=kind)
            pw, mde = effects.power_mde(r)
            assert np.isnan(pw) or 0 <= pw <= 1, (n1, n2, kind)
            assert np.isnan(mde) or np.isfinite(mde), (n1, n2, kind)


@pytest.mark.parametrize("before, after, paired", [
    ([5, 5, 5], [5, 5, 5], False), ([5, 5], [6, 6], False), ([5, 5, 5], [5, 5, 5], True), ([1, 2], [2, 4], True),
])
def test_compare_zero_variance_and_n2_give_nan_not_errors(before, after, paired):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning leaks into a report either
        r = compare(before, after, paired=paired)
        pw, mde = effects.power_mde(r)
    assert r["n_before"] == len(before)
    if np.ptp(np.subtract(after, before)) == 0 and paired or (np.ptp(before) == 0 and np.ptp(after) == 0):
        assert np.isnan(r["effect_size"]) and np.isnan(pw)


def test_compare_needs_two_per_group():
    with pytest.raises(ValueError, match="at least 2"):
        compare([1.0], [2.0, 3.0])


# --- measures on their own calendars ------------------------------------------------------------------
def _measure(start, control=("B05", "B06", "B07", "B08"), metrics=("waiting_minutes",), mid="m"):
    from study.data.config import Measure

    return Measure(id=mid, name=f"Measure {mid}", start=start, pilot=["B01", "B02", "B03", "B04"], control=list(control),
                   metrics=list(metrics))


@pytest.mark.parametrize("start, baseline, status, before, after, its_ok", [
    ("2024-11-15", "2025Q1", "sustained", "2025Q1", "2025Q2", False),            # before the baseline
    ("2025-01-01", "2025Q1", "sustained", "2025Q1", "2025Q2", False),            # the baseline's first day
    ("2025-02-15", "2025Q1", "sustained", "2025Q1", "2025Q2", True),             # inside the baseline
    ("2025-04-01", "2025Q1", "introduced", "2025Q1", "2025Q2", True),            # first day of the current quarter
    ("2025-05-12", "2025Q1", "introduced", "2025Q1 and 2025-04-01 – 2025-05-11", "2025-05-12 – 2025-06-30", True),
    ("2025-07-01", "2025Q1", "planned", "", "", False),                          # after the current quarter
    ("2025-05-12", None, "introduced", "2025-04-01 – 2025-05-11", "2025-05-12 – 2025-06-30", True),  # no baseline
    ("2025-04-01", None, "not testable", "", "", False),                         # no baseline, first day
    ("2025-02-15", None, "not testable", "", "", False),                         # no baseline, started before
    ("2024-10-01", "2024Q2", "introduced", "2024Q2", "2025Q2", True),            # between non-adjacent quarters
])
def test_measure_window(start, baseline, status, before, after, its_ok):
    import datetime as dt

    w = effects.measure_window(_measure(start), baseline, "2025Q2")
    assert w["status"] == status and w["before_text"] == before and w["after_text"] == after and w["its_ok"] == its_ok
    assert w["reason"]
    if status == "planned":
        assert w["reason"] == "starts after 2025Q2" and w["split"] is None
    if status == "sustained":
        assert w["split"] == dt.date(2025, 4, 1) and "grew or held" in w["comparison"]
    if status == "introduced":
        assert w["split"] == dt.date.fromisoformat(start)
    if status == "not testable":
        assert w["split"] is None and ("no baseline" in w["reason"])


def _study_with(study, *measures):
    return study.model_copy(update={"measures": list(measures)})


def test_evaluate_on_own_calendars_pilot_only_and_too_few(study, sample_frames):
    base, cur = sample_frames["2025Q1"], dict(sample_frames["2025Q2"])
    cur["survey"] = cur["survey"][pd.to_datetime(cur["survey"]["interview_date"]) < "2025-06-20"]   # no survey after June 19
    pilot_only = _measure("2025-04-01", control=(), metrics=("handling_minutes", "overall_satisfaction"), mid="pilot_only")
    mid = _measure("2025-05-12", metrics=("waiting_minutes", "efficiency"), mid="mid")
    late = _measure("2025-06-25", metrics=("overall_satisfaction", "waiting_minutes"), mid="late")   # survey ends earlier
    planned = _measure("2025-08-01", mid="planned")
    s = _study_with(study, pilot_only, mid, late, planned)
    windows = {m.id: effects.measure_window(m, "2025Q1", "2025Q2") for m in s.measures}
    t = effects.evaluate(s, base, cur, n_boot=199, seed=1, windows=windows)
    assert "planned" not in set(t["measure"])                     # planned: not tested
    po = t[t["measure"] == "pilot_only"]
    assert set(po["analysis"]) == {"pilot before/after"} and po["skipped"].eq("").all() and po["p_holm"].notna().all()
    assert "boot_p" in t and po["boot_p"].isna().all()            # no KeyError 'boot_p' without a DiD
    # the mid-quarter start: before = baseline + April 1 – May 11 of the current quarter
    m = t[(t["measure"] == "mid") & (t["analysis"] == "pilot before/after") & (t["metric"] == "waiting_minutes")].iloc[0]
    pt = pd.concat([base["process_times"], cur["process_times"]])
    pilot = pt[pt["branch_id"].isin(mid.pilot)]
    n_after = int((pd.to_datetime(pilot["issued_at"]) >= "2025-05-12").sum())
    assert m["n_after"] == n_after and m["n_before"] == len(pilot) - n_after
    d = t[(t["measure"] == "mid") & (t["analysis"] == "difference-in-differences")]
    assert (d["test"] == "did_wild_bootstrap").all() and (d["n_boot"] == 199).all()
    assert np.allclose(d["p_used"], d["boot_p"])
    # a side with fewer than 2 observations is a skipped row with its reason, never an error
    late_sv = t[(t["measure"] == "late") & (t["metric"] == "overall_satisfaction")]
    assert late_sv["skipped"].str.contains("too few observations").all() and late_sv["p"].isna().all()


def test_evaluate_without_process_data_skips_process_metrics(study, sample_frames):
    base = {**sample_frames["2025Q1"], "process_times": None}
    cur = {**sample_frames["2025Q2"], "process_times": None}
    s = _study_with(study, _measure("2025-04-01", metrics=("waiting_minutes", "efficiency")))
    t = effects.evaluate(s, base, cur, n_boot=99, windows={"m": effects.measure_window(s.measures[0], "2025Q1", "2025Q2")})
    w = t[t["metric"] == "waiting_minutes"]
    assert len(w) == 3 and w["skipped"].str.contains("no queue data").all()
    assert t.loc[t["metric"] == "efficiency", "skipped"].eq("").all()


def test_pretrend_with_as_many_contrasts_as_cluster_df_is_not_tested():
    """A cluster-robust covariance has rank at most G − 1: 4 clusters and 5 pre periods (4 contrasts) leave the joint
    test undefined (R: car::linearHypothesis(fit, ..., vcov = sandwich::vcovCL(fit, cluster = ~u)) stops on a singular
    matrix); statsmodels warned and returned a p from a pseudo-inverse, which the report printed. 3 pre periods (2
    contrasts) with the same 4 clusters are tested."""
    import warnings

    rng = np.random.default_rng(5)
    rows = [{"u": u, "g": "pilot" if u < 2 else "control", "t": t, "y": rng.normal() + (u < 2 and t == 5)}
            for u in range(4) for t in range(6) for _ in range(20)]
    df = pd.DataFrame(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no rank warning either
        d = effects.did(df, "y", unit="u", group="g", period="t", post=[5], n_boot=99, seed=1)
    assert np.isnan(d["pretrend_p"]) and "4 pre-period contrasts need more than 3 cluster degrees of freedom" in d["notes"]
    ok = effects.did(df[df["t"] >= 2], "y", unit="u", group="g", period="t", post=[5], n_boot=99, seed=1)
    assert 0 <= ok["pretrend_p"] <= 1
