"""study.stats.drivers against R (tests/reference/drivers.R, printed values pasted below) and the
sample study's known truth (data/raw/truth.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.stats import drivers

ROOT = Path(__file__).resolve().parents[1]
SWISS = ROOT / "tests" / "data" / "swiss.csv"
XS = ["Agriculture", "Examination", "Education", "Catholic", "Infant.Mortality"]


@pytest.fixture(scope="module")
def swiss():
    return pd.read_csv(SWISS)


def test_swiss_fixture_is_rs_swiss(swiss):
    assert swiss.shape == (47, 6)
    # R: mean(swiss$Fertility) = 70.1425531915; sum(swiss$Catholic) = 1933.76
    assert swiss["Fertility"].mean() == pytest.approx(70.14255319, abs=1e-7)
    assert swiss["Catholic"].sum() == pytest.approx(1933.76, abs=1e-6)


# --- LMG ---------------------------------------------------------------------------------------
# R (tests/reference/drivers.R): brute-force average over all 5! = 120 orderings of the R²
# increments from lm(); what relaimpo::calc.relimp(lm(Fertility ~ ., swiss), type = "lmg") returns.
R_LMG = {"Agriculture": 0.05709122077, "Examination": 0.17117302890, "Education": 0.26013467862,
         "Catholic": 0.10557015037, "Infant.Mortality": 0.11276592293}
R_R2 = 0.7067350016
# R: Johnson's relative weights by hand (eigen decomposition of cor(X)).
R_RW = {"Agriculture": 0.04841689581, "Examination": 0.15470824981, "Education": 0.27196410465,
        "Catholic": 0.11468002995, "Infant.Mortality": 0.11696572138}


def test_lmg_matches_r_bruteforce_on_swiss(swiss):
    out = drivers.relative_importance(swiss, "Fertility", XS, n_boot=0)
    got = out.set_index("predictor")["importance"]
    for k, v in R_LMG.items():
        assert got[k] == pytest.approx(v, abs=1e-9)
    assert got.sum() == pytest.approx(R_R2, abs=1e-9)
    assert out.attrs["r2"] == pytest.approx(R_R2, abs=1e-9)
    assert out["share"].sum() == pytest.approx(1.0)
    assert out.set_index("predictor")["rank"].to_dict() == {"Education": 1, "Examination": 2, "Infant.Mortality": 3,
                                                            "Catholic": 4, "Agriculture": 5}
    assert out[["ci_low", "ci_high"]].isna().all().all()


def test_relative_weights_match_r_on_swiss(swiss):
    out = drivers.relative_importance(swiss, "Fertility", XS, method="relative_weights", n_boot=0)
    got = out.set_index("predictor")["importance"]
    for k, v in R_RW.items():
        assert got[k] == pytest.approx(v, abs=1e-9)
    assert got.sum() == pytest.approx(R_R2, abs=1e-9)


def _lmg_by_orderings(data, y, xs):
    """An independent LMG: average over all orderings of sequential R² increments (numpy lstsq)."""
    from itertools import permutations

    def r2(cols):
        if not cols:
            return 0.0
        X = np.column_stack([np.ones(len(data)), data[list(cols)].to_numpy()])
        beta, *_ = np.linalg.lstsq(X, data[y].to_numpy(), rcond=None)
        e = data[y].to_numpy() - X @ beta
        return 1 - e @ e / ((data[y] - data[y].mean()) ** 2).sum()

    cache: dict = {}
    tot = dict.fromkeys(xs, 0.0)
    orders = list(permutations(xs))
    for o in orders:
        for k in range(len(o)):
            a, b = frozenset(o[: k + 1]), frozenset(o[:k])
            for s in (a, b):
                if s not in cache:
                    cache[s] = r2(sorted(s))
            tot[o[k]] += cache[a] - cache[b]
    return {k: v / len(orders) for k, v in tot.items()}


def test_lmg_matches_orderings_on_random_data():
    rng = np.random.default_rng(5)
    n, p = 300, 6
    X = rng.normal(size=(n, p)) @ (np.eye(p) + 0.4 * rng.normal(size=(p, p)))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(p)])
    df["y"] = X @ rng.uniform(0, 1, p) + rng.normal(size=n)
    ours = drivers.relative_importance(df, "y", list(df.columns[:p]), n_boot=0).set_index("predictor")["importance"]
    ref = _lmg_by_orderings(df, "y", list(df.columns[:p]))
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, abs=1e-10)


def test_bootstrap_covariances_equal_direct_resampling():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(200, 4)) + 5
    got = drivers._bootstrap_covs(Z, 7, np.random.default_rng(11), chunk=7)
    draws = np.random.default_rng(11).integers(0, 200, size=(7, 200))
    for b in range(7):
        np.testing.assert_allclose(got[b], np.cov(Z[draws[b]], rowvar=False), rtol=1e-10, atol=1e-12)


def test_bootstrap_ci_brackets_estimate_and_is_seeded(swiss):
    a = drivers.relative_importance(swiss, "Fertility", XS, n_boot=300, seed=42)
    b = drivers.relative_importance(swiss, "Fertility", XS, n_boot=300, seed=42)
    pd.testing.assert_frame_equal(a, b)
    assert (a["ci_low"] <= a["importance"]).all() and (a["importance"] <= a["ci_high"]).all()
    assert np.allclose(a.attrs["boot"].sum(axis=1) > 0, True)


# --- driver regression -------------------------------------------------------------------------
# R: fit <- lm(Fertility ~ ., swiss); HC3 by hand = sandwich::vcovHC(fit, type = "HC3")
R_COEF = {"(Intercept)": (66.9151816790, 11.51741707028), "Agriculture": (-0.1721139709, 0.07159680686),
          "Examination": (-0.2580082398, 0.27337834295), "Education": (-0.8709400629, 0.21012041497),
          "Catholic": (0.1041153307, 0.03275619515), "Infant.Mortality": (1.0770481407, 0.45873471521)}
# R: coef(fit)[xs] * sapply(swiss[xs], sd) / sd(swiss$Fertility); diag(solve(cor(swiss[xs])))
R_BETA = {"Agriculture": -0.3129212825, "Examination": -0.1647782225, "Education": -0.6704007801,
          "Catholic": 0.3476000281, "Infant.Mortality": 0.2511359763}
R_VIF = {"Agriculture": 2.284129378, "Examination": 3.675419576, "Education": 2.774942781,
         "Catholic": 1.937160380, "Infant.Mortality": 1.107542226}


def test_driver_regression_matches_r(swiss):
    m = drivers.driver_regression(swiss, "Fertility", XS)
    t = m.terms.set_index("term")
    for k, (coef, se) in R_COEF.items():
        assert t.loc[k, "coef"] == pytest.approx(coef, rel=1e-9)
        assert t.loc[k, "se"] == pytest.approx(se, rel=1e-9)
    for k in XS:
        assert t.loc[k, "beta_std"] == pytest.approx(R_BETA[k], rel=1e-8)
        assert t.loc[k, "vif"] == pytest.approx(R_VIF[k], rel=1e-8)
        # t = coef / se, p from t(41), as coeftest(fit, vcovHC(fit, "HC3"))
        assert t.loc[k, "p"] == pytest.approx(2 * __import__("scipy").stats.t.sf(abs(t.loc[k, "t"]), 41))
    # R: summary(fit): R2 = 0.7067350016, adjR2 = 0.6709709774, F = 19.76105926, p = 5.593798541e-10
    assert m.fit["r2"] == pytest.approx(0.7067350016, abs=1e-9)
    assert m.fit["adj_r2"] == pytest.approx(0.6709709774, abs=1e-9)
    assert m.fit["f"] == pytest.approx(19.76105926, rel=1e-8)
    assert m.fit["f_p"] == pytest.approx(5.593798541e-10, rel=1e-6)
    d = m.diagnostics.set_index("check")
    # R: lmtest::bptest(fit): BP = 5.8510874, df = 5, p-value = 0.3209795
    bp = d.loc[d.index.str.startswith("Breusch")].iloc[0]
    assert bp["statistic"] == pytest.approx(5.851087368, rel=1e-8)
    assert bp["p"] == pytest.approx(0.3209795351, rel=1e-7)
    assert d.loc["largest variance inflation factor", "statistic"] == pytest.approx(3.675419576, rel=1e-8)
    assert "not a concern" in m.judgement


def test_driver_regression_flags_collinearity_and_bad_input(swiss):
    df = swiss.copy()
    df["Edu2"] = df["Education"] + np.random.default_rng(0).normal(0, 0.5, len(df))
    m = drivers.driver_regression(df, "Fertility", XS + ["Edu2"])
    assert m.diagnostics["statistic"].iloc[2] > 10
    assert "serious multicollinearity" in m.judgement.lower()
    with pytest.raises(ValueError, match="not in the data"):
        drivers.driver_regression(swiss, "Fertility", ["nope"])
    with pytest.raises(ValueError, match="also listed"):
        drivers.driver_regression(swiss, "Fertility", ["Fertility", "Education"])
    df["txt"] = "a"
    with pytest.raises(ValueError, match="not numeric"):
        drivers.relative_importance(df, "Fertility", ["txt", "Education"])


def test_controls_are_dummy_coded(swiss):
    df = swiss.assign(region=np.where(swiss["Catholic"] > 50, "cath", "prot"))
    m = drivers.driver_regression(df, "Fertility", ["Education", "Agriculture"], controls=["region"])
    assert "region_prot" in set(m.terms["term"])


# --- ordered logit -------------------------------------------------------------------------------
# R: MASS::polr(factor(cut(Fertility, c(0,60,70,80,100), labels = FALSE), ordered = TRUE) ~ ., Hess = TRUE)
R_POLR = {"Agriculture": (-0.04978130026, 0.02216833289), "Examination": (-0.13636765332, 0.07640994871),
          "Education": (-0.17613210994, 0.06583266299), "Catholic": (0.02159183660, 0.01008061438),
          "Infant.Mortality": (0.38284695825, 0.13584492813)}


def test_ordered_logit_matches_polr(swiss):
    df = swiss.assign(Fcat=pd.cut(swiss["Fertility"], [0, 60, 70, 80, 100], labels=False) + 1)
    res = drivers.ordered_logit_check(df, "Fcat", XS)
    t = res.terms.set_index("predictor")
    for k, (coef, se) in R_POLR.items():
        # polr stops optim() at reltol 1e-8; our optimum has a (slightly) higher log-likelihood,
        # hence agreement to ~1e-3 relative rather than 1e-8.
        assert t.loc[k, "coef"] == pytest.approx(coef, rel=2e-3)
        assert t.loc[k, "se"] == pytest.approx(se, rel=2e-3)
    assert -1 <= res.agreement["kendall_tau"] <= 1
    assert set(t["rank_lmg"]) == set(range(1, 6))


# --- importance-performance ---------------------------------------------------------------------
def test_importance_performance_quadrants():
    imp = pd.Series({"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1})
    perf = pd.Series({"a": 60, "b": 80, "c": 50, "d": 90})
    out = drivers.importance_performance(imp, perf).set_index("dimension")
    assert out.attrs["importance_line"] == pytest.approx(0.25)
    assert out.attrs["performance_line"] == pytest.approx(70)
    assert out["quadrant"].to_dict() == {"a": "concentrate here", "b": "keep up the good work",
                                         "c": "low priority", "d": "possible overkill"}
    assert "mean of the dimensions" in out.attrs["lines"]
    fixed = drivers.importance_performance(imp, perf, importance_line=0.05, performance_line=55).set_index("dimension")
    assert fixed.loc["c", "quadrant"] == "concentrate here"
    with pytest.raises(ValueError, match="unmatched"):
        drivers.importance_performance(imp, perf.drop("a"))


# --- the sample study's truth ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_scores(study, prepared_sample, sample_frames):
    from study.stats.effects import metric_values

    _, truth = prepared_sample
    frames = sample_frames["2025Q1"]
    dims = study.dimension_ids
    df = pd.DataFrame({d: metric_values(study, frames, d)["value"].to_numpy() for d in dims})
    df["overall_satisfaction"] = frames["survey"]["overall_satisfaction"].to_numpy().astype(float)
    # the sample's design (study.yml sampling): branches of unequal size drawn equally, so weighted
    from study.stats import design

    d = design.build(frames["survey"], study, "2025Q1").frame
    df["_weight"], df["_stratum"] = d["_weight"].to_numpy(), d["_stratum"].to_numpy()
    return df, truth


def test_sample_driver_truth_is_recovered(sample_scores, study):
    df, truth = sample_scores
    dims = study.dimension_ids
    true = truth["population"]["lmg"]           # LMG of the 400,000-person population
    # every true population LMG value inside its bootstrap CI, simultaneously: Bonferroni over the
    # dimensions (ten 95 % intervals all covering has a probability well below 95 %; the sample's
    # "channel" falls just outside its own 95 % interval, weighted or not)
    level = 1 - 0.05 / len(dims)
    out = drivers.relative_importance(df, "overall_satisfaction", dims, n_boot=1000, seed=2025, level=level,
                                      weights="_weight", strata="_stratum").set_index("predictor")
    for d in dims:
        assert out.loc[d, "ci_low"] <= true["importance"][d] <= out.loc[d, "ci_high"], d
    # the ranking: same top driver, strong rank agreement
    assert out["rank"].idxmin() == min(true["rank"], key=true["rank"].get) == "efficiency"
    from scipy.stats import spearmanr

    rho = spearmanr(out["rank"].reindex(dims), [true["rank"][d] for d in dims])[0]
    assert rho >= 0.8
    # the generator's weights: the largest weight is the top driver
    w = truth["driver_weights"]["weights"]
    assert max(w, key=w.get) == out["rank"].idxmin()
    # the ordered logit agrees with LMG
    ol = drivers.ordered_logit_check(df, "overall_satisfaction", dims, lmg=out.reset_index())
    assert ol.agreement["kendall_tau"] >= 0.6 and ol.agreement["top_match"]
