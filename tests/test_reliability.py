"""study.stats.reliability against R (psych 2.2.9, lavaan 0.6.14, semTools 0.5.6) and the sample study.

Reference values are printed by ``Rscript tests/reference/reliability.R`` (which also writes the
fixtures tests/data/holzinger.csv = lavaan::HolzingerSwineford1939 and tests/data/bfi_a.csv =
psych::bfi A1-A5, first 500 complete rows); they are pasted below with the R call that made them.
Tolerances: 1e-6 for closed-form statistics, 1e-3 for ML fits (iterative).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from study.stats import reliability as rel
from study.thresholds import THRESHOLDS, judge, thresholds_table

DATA = Path(__file__).parent / "data"
HS_SCALES = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
A_ITEMS = ["A1", "A2", "A3", "A4", "A5"]
CLOSED, ITER = 1e-6, 1e-3

R = {
    # al <- psych::alpha(d, check.keys = FALSE): al$total$raw_alpha, $std.alpha, $average_r,
    # al$alpha.drop$raw_alpha, al$item.stats$r.drop, $mean, $sd;
    # psych::alpha.ci(raw_alpha, n.obs, n.var, p.val = .05): lower.ci, upper.ci (Feldt)
    "hs_visual_raw_alpha": [0.626117131885],
    "hs_visual_std_alpha": [0.627183854419],
    "hs_visual_average_r": [0.359287495766],
    "hs_visual_alpha_drop": [0.506987639419, 0.611541495881, 0.458377727618],
    "hs_visual_r_drop": [0.449031541313, 0.374967961807, 0.48428123417],
    "hs_visual_mean": [4.93576965638, 6.08803986711, 2.25041528239],
    "hs_visual_sd": [1.1674321158, 1.17745055596, 1.13097940313],
    "hs_visual_feldt": [0.546503337103, 0.693753346172],
    "hs_textual_raw_alpha": [0.882706912876],
    "hs_textual_std_alpha": [0.884843520142],
    "hs_textual_average_r": [0.719201982841],
    "hs_textual_alpha_drop": [0.830693242057, 0.825730289667, 0.843459158221],
    "hs_textual_r_drop": [0.775981252646, 0.787185931983, 0.765352523488],
    "hs_textual_mean": [3.06090808684, 4.34053156146, 2.18557190176],
    "hs_textual_sd": [1.16411628409, 1.29047215513, 1.0956031395],
    "hs_textual_feldt": [0.85773078114, 0.90392548439],
    "hs_speed_raw_alpha": [0.688455022985],
    "hs_speed_std_alpha": [0.689603613376],
    "hs_speed_average_r": [0.425473030703],
    "hs_speed_alpha_drop": [0.619749954401, 0.507070235855, 0.653612336674],
    "hs_speed_r_drop": [0.48617994594, 0.572153341228, 0.455532122944],
    "hs_speed_mean": [4.18590206678, 5.52707641196, 5.37412329169],
    "hs_speed_sd": [1.08953350685, 1.01261514118, 1.00915173101],
    "hs_speed_feldt": [0.622115321488, 0.744814178813],
    # bfi A1-A5 with A1 reverse keyed (7 - A1)
    "bfi_a_raw_alpha": [0.699857438811],
    "bfi_a_std_alpha": [0.708122406143],
    "bfi_a_average_r": [0.326698508192],
    "bfi_a_alpha_drop": [0.718873148376, 0.606413297295, 0.61175875334, 0.684981101716, 0.623009034446],
    "bfi_a_r_drop": [0.289144273675, 0.5801646387, 0.544614699128, 0.384050145218, 0.522770147369],
    "bfi_a_mean": [4.682, 4.844, 4.652, 4.696, 4.554],
    "bfi_a_sd": [1.33882818982, 1.1464260051, 1.33358648231, 1.44629441507, 1.27527905705],
    "bfi_a_feldt": [0.656158240228, 0.739533745422],
    # psych::KMO(d): $MSA, $MSAi; psych::cortest.bartlett(d): chisq, df, p.value
    "hs_kmo": [0.752244592603],
    "hs_msa": [0.805021226632, 0.777938285398, 0.734302877282, 0.763262045281, 0.73872385652, 0.807559054803,
               0.593046810633, 0.682937939231, 0.787864851859],
    "hs_bartlett": [904.097051037, 36, 1.91207887406e-166],
    "bfi_a_kmo": [0.735883156952],
    "bfi_a_msa": [0.685798924975, 0.722163808434, 0.728197042584, 0.806680867635, 0.743078785939],
    "bfi_a_bartlett": [476.887528519, 10, 3.81801405658e-96],
    # fit <- lavaan::cfa("visual =~ x1+x2+x3; textual =~ x4+x5+x6; speed =~ x7+x8+x9", data = hs)
    # fitMeasures(fit, c(chisq, df, pvalue, cfi, tli, rmsea, rmsea.ci.lower, rmsea.ci.upper, srmr))
    "hs_fit": [85.30552177, 24, 8.50255321705e-09, 0.930559651799, 0.895839477699, 0.0921214845102,
               0.0714184904399, 0.113678016812, 0.0652050571844],
    # standardizedSolution(fit)$est.std and parameterEstimates(fit)$est for op "=~"
    "hs_loading_std": [0.771880420352, 0.423600991988, 0.581132323928, 0.851582222378, 0.855065446373,
                       0.838010073942, 0.56951468399, 0.72304443277, 0.665009218816],
    "hs_loading": [1, 0.553500293764, 0.729370209767, 1, 1.11307657812, 0.926146236632, 1, 1.17995083947,
                   1.08153015686],
    # CR = (Σλ*)²/((Σλ*)² + Σ(1-λ*²)), AVE = mean λ*² from est.std
    "hs_cr": [0.625838444363, 0.885001335532, 0.691373580804],
    "hs_ave": [0.370983987217, 0.719530027693, 0.42979249605],
    # semTools::compRelSEM(fit)
    "hs_compRelSEM": [0.612005151086, 0.885060773163, 0.685841692187],
    # semTools::htmt(model, data = hs, htmt2 = FALSE / TRUE), lower triangle (t,v), (s,v), (s,t)
    "hs_htmt": [0.424323042413, 0.466549738479, 0.289567862761],
    "hs_htmt2": [0.38408856392, 0.386772930479, 0.279683551027],
    # lavInspect(fit, "cor.lv"), lower triangle
    "hs_factor_cor": [0.458509300356, 0.470534544464, 0.282984730416],
    # one-factor cfa per scale: (Σλ)²ψ / ((Σλ)²ψ + Σθ) from parameterEstimates
    "hs_omega_total": [0.632553158007, 0.88588092385, 0.696135277595],
    "bfi_a_omega_total": [0.710580285952],
    # fitMeasures(cfa("f =~ A1+...+A5", a_rev), c(chisq, df, cfi, tli, rmsea, srmr))
    "bfi_a_onefactor_fit": [41.3422885834, 5, 0.922716970261, 0.845433940522, 0.120569131345, 0.0506339711206],
}


@pytest.fixture(scope="module")
def hs() -> pd.DataFrame:
    return pd.read_csv(DATA / "holzinger.csv")


@pytest.fixture(scope="module")
def bfi_a() -> pd.DataFrame:
    return rel.recode_reverse(pd.read_csv(DATA / "bfi_a.csv"), ["A1"], 1, 6)


@pytest.fixture(scope="module")
def hs_cfa(hs):
    return rel.cfa(hs, HS_SCALES)


def close(ours, ref, tol):
    np.testing.assert_allclose(np.asarray(ours, dtype=float), np.asarray(ref, dtype=float), rtol=0, atol=tol)


# ---------------------------------------------------------------------------------------------
# psych::alpha
@pytest.mark.parametrize("tag", ["visual", "textual", "speed", "bfi_a"])
def test_alpha_matches_psych(tag, hs, bfi_a):
    data, scales = (bfi_a, {"bfi_a": A_ITEMS}) if tag == "bfi_a" else (hs, {tag: HS_SCALES[tag]})
    key = tag if tag == "bfi_a" else f"hs_{tag}"
    row = rel.scale_reliability(data, scales, omega=False, measurement_model=False).iloc[0]
    close(row["alpha"], R[f"{key}_raw_alpha"][0], CLOSED)
    close(row["alpha_std"], R[f"{key}_std_alpha"][0], CLOSED)
    close(row["mean_inter_item_r"], R[f"{key}_average_r"][0], CLOSED)
    close([row["alpha_ci_low"], row["alpha_ci_high"]], R[f"{key}_feldt"], CLOSED)
    assert row["n"] == len(data) and row["k"] == len(scales[tag])

    items = rel.item_statistics(data, scales)
    close(items["alpha_if_deleted"], R[f"{key}_alpha_drop"], CLOSED)
    close(items["item_rest_r"], R[f"{key}_r_drop"], CLOSED)
    close(items["mean"], R[f"{key}_mean"], CLOSED)
    close(items["sd"], R[f"{key}_sd"], CLOSED)
    assert list(items.columns[:7]) == ["scale", "item", "n", "mean", "sd", "item_rest_r", "alpha_if_deleted"]


def test_feldt_formula_published_shape():
    # Feldt et al. (1987): the interval brackets α, narrows with n, and uses F(n-1, (n-1)(k-1)).
    lo, hi = rel.feldt_ci(0.8, 100, 10)
    assert lo < 0.8 < hi
    lo2, hi2 = rel.feldt_ci(0.8, 1000, 10)
    assert hi2 - lo2 < hi - lo
    close(lo, 1 - 0.2 * stats.f.ppf(0.975, 99, 891), 1e-12)


def test_kmo_bartlett_match_psych(hs, bfi_a):
    for tag, data, items in (("hs", hs, [f"x{i}" for i in range(1, 10)]), ("bfi_a", bfi_a, A_ITEMS)):
        res = rel.kmo_bartlett(data, items)
        close(res["kmo"], R[f"{tag}_kmo"][0], CLOSED)
        close(res["msa"].to_numpy(), R[f"{tag}_msa"], CLOSED)
        assert list(res["msa"].index) == items
        close(res["chi2"], R[f"{tag}_bartlett"][0], 1e-6)
        assert res["df"] == R[f"{tag}_bartlett"][1]
        assert res["p"] == pytest.approx(R[f"{tag}_bartlett"][2], rel=1e-6)
        assert res["judgements"]["ok"].iloc[0] == True  # noqa: E712


# ---------------------------------------------------------------------------------------------
# lavaan::cfa
def test_cfa_fit_measures_match_lavaan(hs_cfa):
    fit = hs_cfa.fit
    names = ["chi2", "df", "p", "cfi", "tli", "rmsea", "rmsea_ci_low", "rmsea_ci_high", "srmr"]
    assert list(fit.index[:9]) == names
    close(fit[names], R["hs_fit"], ITER)
    # the published lavaan tutorial value
    assert round(fit["chi2"], 3) == 85.306 and fit["df"] == 24
    assert fit["p"] == pytest.approx(R["hs_fit"][2], rel=1e-3)
    assert hs_cfa.converged and hs_cfa.n == 301


def test_cfa_loadings_cr_ave_htmt_match_lavaan_semtools(hs_cfa):
    ld = hs_cfa.loadings
    assert list(ld.columns) == ["factor", "item", "loading", "loading_std"]
    close(ld["loading_std"], R["hs_loading_std"], ITER)
    close(ld["loading"], R["hs_loading"], ITER)
    v = hs_cfa.validity.set_index("factor").loc[list(HS_SCALES)]
    close(v["cr"], R["hs_cr"], ITER)
    close(v["ave"], R["hs_ave"], ITER)
    close(v["omega_obs"], R["hs_compRelSEM"], ITER)
    lower = lambda m: [m.loc["textual", "visual"], m.loc["speed", "visual"], m.loc["speed", "textual"]]  # noqa: E731
    close(lower(hs_cfa.htmt), R["hs_htmt"], CLOSED)  # closed form on the item correlations
    close(lower(hs_cfa.htmt2), R["hs_htmt2"], CLOSED)
    close(lower(hs_cfa.factor_correlations), R["hs_factor_cor"], ITER)
    fl = hs_cfa.fornell_larcker
    close(np.diag(fl.to_numpy()), np.sqrt(R["hs_ave"]), ITER)


def test_cfa_judgements_readable(hs_cfa):
    j = hs_cfa.judgements
    rmsea = j[(j["what"] == "model") & (j["statistic"] == "rmsea")].iloc[0]
    assert not rmsea["ok"] and "RMSEA = 0.092" in rmsea["reason"] and "Hu & Bentler" in rmsea["reason"]
    srmr = j[j["statistic"] == "srmr"].iloc[0]
    assert srmr["ok"] == True  # noqa: E712
    ave_visual = j[(j["what"] == "visual") & (j["statistic"] == "ave")].iloc[0]
    assert not ave_visual["ok"] and "Fornell & Larcker" in ave_visual["reason"]
    assert j[j["statistic"] == "htmt"]["ok"].astype(bool).all()
    # the weak x2 loading (0.424) is named
    assert (j["what"] == "visual/x2").any()


# lavaan's post-estimation check (lav_object_post_check / lavInspect(fit, "post.check"))
def test_heywood_case_is_found_as_lavaan_finds_it(hs_cfa):
    hw = pd.read_csv(DATA / "heywood.csv")
    r = rel.cfa(hw, {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3"]})
    # pe <- parameterEstimates(cfa("A =~ a1 + a2 + a3; B =~ b1 + b2 + b3", data = hw)); residual variances
    # (lavaan warns "some estimated ov variances are negative"); lavInspect(fit, "post.check") is FALSE
    r_theta = [-0.0863101919731, 0.284033358976, 0.293614348205, 0.252235138712, 0.46060846066, 0.459752422661]
    fit = rel._fit_ml_cfa(hw[["a1", "a2", "a3", "b1", "b2", "b3"]].to_numpy(float), ["a1", "a2", "a3", "b1", "b2", "b3"],
                          {"A": ["a1", "a2", "a3"], "B": ["b1", "b2", "b3"]})
    assert np.allclose(fit.theta, r_theta, atol=ITER)
    assert r.improper == [("negative_residual_variance", "a1")] and not r.admissible and r.converged
    # fitMeasures(fit, c("chisq", "df", "cfi", "rmsea")): the fit looks good although the solution is improper
    assert np.allclose([r.fit["chi2"], r.fit["df"], r.fit["cfi"], r.fit["rmsea"]],
                       [10.6194879131, 8, 0.993496272979, 0.0467215859558], atol=ITER)
    assert r.loadings.set_index("item").loc["a1", "loading_std"] > 1
    bad = r.judgements[r.judgements["statistic"] == "negative_residual_variance"]
    assert list(bad["what"]) == ["a1"] and not bad["ok"].any()
    # lavInspect(cfa(HS model), "post.check") is TRUE
    assert hs_cfa.improper == [] and hs_cfa.admissible


def test_admissibility_flags_each_kind():
    fit = rel._MLFit(["x", "y", "z", "u"], ["F", "G"], np.ones((4, 2)), np.array([[1.0, 1.2], [1.2, 1.0]]),
                     np.array([0.5, 0.4, 0.3, 0.2]), np.eye(4), 100, 0.0, True)
    assert rel.admissibility(fit) == [("factor_covariance_not_pd", "model")]
    fit.phi = np.array([[-0.1, 0.0], [0.0, 1.0]])
    fit.theta = np.array([0.5, -0.01, 0.3, 0.2])
    assert rel.admissibility(fit) == [("negative_residual_variance", "y"), ("negative_factor_variance", "F"),
                                      ("factor_covariance_not_pd", "model")]


def test_one_factor_omega_matches_lavaan(hs, bfi_a):
    ours = [rel.one_factor_omega(hs, HS_SCALES[s])["omega_total"] for s in HS_SCALES]
    close(ours, R["hs_omega_total"], ITER)
    close(rel.one_factor_omega(bfi_a, A_ITEMS)["omega_total"], R["bfi_a_omega_total"][0], ITER)
    one = rel.cfa(bfi_a, {"A": A_ITEMS}).fit
    close(one[["chi2", "df", "cfi", "tli", "rmsea", "srmr"]], R["bfi_a_onefactor_fit"], ITER)
    assert np.isnan(rel.one_factor_omega(hs, ["x1", "x2"])["omega_total"])  # 2 items: not identified


def test_scale_reliability_table(hs):
    tab = rel.scale_reliability(hs, HS_SCALES)
    assert list(tab.columns[:11]) == ["scale", "n", "k", "alpha", "alpha_std", "alpha_ci_low", "alpha_ci_high",
                                      "omega_total", "cr", "ave", "mean_inter_item_r"]
    close(tab["omega_total"], R["hs_omega_total"], ITER)
    close(tab["cr"], R["hs_cr"], ITER)
    close(tab["ave"], R["hs_ave"], ITER)
    close(tab["alpha"], [R[f"hs_{s}_raw_alpha"][0] for s in HS_SCALES], CLOSED)
    judged = rel.judge_reliability(tab)
    row = judged[(judged["scale"] == "textual") & (judged["statistic"] == "alpha")].iloc[0]
    assert row["ok"] == True and "Nunnally" in row["reason"]  # noqa: E712 - True itself, not truthy
    row = judged[(judged["scale"] == "visual") & (judged["statistic"] == "alpha")].iloc[0]
    assert row["ok"] == False  # noqa: E712


# ---------------------------------------------------------------------------------------------
# bootstrap
def _naive_bca(x_scales: list[np.ndarray], n_boot: int, seed: int, level: float = 0.95):
    """Textbook BCa with an explicit loop over resamples and jackknife deletions (Efron 1987)."""
    n = x_scales[0].shape[0]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))  # the same stream the library draws in one chunk
    out = []
    for x in x_scales:
        a = lambda d: rel.cronbach_alpha(np.cov(d, rowvar=False))  # noqa: E731
        theta = a(x)
        boots = np.array([a(x[i]) for i in idx])
        jack = np.array([a(np.delete(x, i, axis=0)) for i in range(n)])
        z0 = stats.norm.ppf(np.mean(boots < theta))
        d = jack.mean() - jack
        acc = (d ** 3).sum() / (6 * ((d ** 2).sum()) ** 1.5)
        zq = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
        q = stats.norm.cdf(z0 + (z0 + zq) / (1 - acc * (z0 + zq)))
        out.append(np.quantile(boots, q))
    return np.array(out)


def test_bootstrap_vectorised_equals_naive_loop(hs):
    tab = rel.scale_reliability(hs, HS_SCALES, ci="bootstrap", n_boot=300, seed=42, omega=False,
                                measurement_model=False)
    ref = _naive_bca([hs[HS_SCALES[s]].to_numpy(float) for s in HS_SCALES], 300, 42)
    close(tab[["alpha_ci_low", "alpha_ci_high"]].to_numpy(), ref, 1e-9)
    again = rel.scale_reliability(hs, HS_SCALES, ci="bootstrap", n_boot=300, seed=42, omega=False,
                                  measurement_model=False)
    pd.testing.assert_frame_equal(tab, again)
    assert ((tab["alpha_ci_low"] < tab["alpha"]) & (tab["alpha"] < tab["alpha_ci_high"])).all()


def test_bootstrap_close_to_feldt_on_large_sample():
    rng = np.random.default_rng(3)
    n = 4000
    f = rng.normal(size=n)
    df = pd.DataFrame({f"i{j}": np.clip(np.round(3 + f + rng.normal(size=n)), 1, 5) for j in range(5)})
    sc = {"s": list(df.columns)}
    b = rel.scale_reliability(df, sc, ci="bootstrap", n_boot=1000, seed=1, omega=False, measurement_model=False)
    fe = rel.scale_reliability(df, sc, omega=False, measurement_model=False)
    width_b = b["alpha_ci_high"].iloc[0] - b["alpha_ci_low"].iloc[0]
    width_f = fe["alpha_ci_high"].iloc[0] - fe["alpha_ci_low"].iloc[0]
    assert 0.6 < width_b / width_f < 1.6


# ---------------------------------------------------------------------------------------------
# input handling, reverse keying, missing data
def test_recode_reverse_and_listwise(bfi_a):
    raw = pd.read_csv(DATA / "bfi_a.csv")
    assert (bfi_a["A1"] == 7 - raw["A1"]).all()
    assert (rel.recode_reverse(bfi_a, ["A1"], 1, 6)["A1"] == raw["A1"]).all()
    with pytest.raises(ValueError, match="outside"):
        rel.recode_reverse(raw, ["A1"], 1, 5)
    # reverse= in scale_reliability gives the same as recoding first
    via_kw = rel.scale_reliability(raw, {"A": A_ITEMS}, reverse=["A1"], scale_range=(1, 6), omega=False,
                                   measurement_model=False)
    close(via_kw["alpha"], R["bfi_a_raw_alpha"], CLOSED)
    # listwise per scale: a missing answer drops the respondent from that scale only
    holed = raw.copy().astype(float)
    holed.loc[:9, "A2"] = np.nan
    holed["B1"], holed["B2"] = raw["A1"], raw["A3"]
    tab = rel.scale_reliability(holed, {"A": A_ITEMS, "B": ["B1", "B2"]}, omega=False, measurement_model=False)
    assert tab.set_index("scale")["n"].to_dict() == {"A": 490, "B": 500}


def test_user_errors_name_the_problem(hs):
    with pytest.raises(ValueError, match="x99"):
        rel.scale_reliability(hs, {"s": ["x1", "x99"]})
    with pytest.raises(ValueError, match="ci must be"):
        rel.scale_reliability(hs, HS_SCALES, ci="jackknife")
    with pytest.raises(ValueError, match="zero variance"):
        rel.scale_reliability(hs.assign(c=1.0), {"s": ["x1", "c"]})
    with pytest.raises(ValueError, match="two scales"):
        rel.cfa(hs, {"a": ["x1", "x2", "x3"], "b": ["x3", "x4", "x5"]})
    with pytest.raises(ValueError, match="non-numeric"):
        rel.kmo_bartlett(hs.assign(x1="a"), ["x1", "x2"])


def test_thresholds_and_judge():
    ok, why = judge("alpha", 0.82)
    assert ok is True and "0.820" in why and "Nunnally" in why
    ok, why = judge("rmsea", 0.07)
    assert ok is False and "> 0.06" in why
    assert judge("htmt", 0.85)[0] is False  # strict: HTMT must be below .85
    assert judge("cfi", float("nan"))[0] is None
    with pytest.raises(ValueError):
        judge("no_such_statistic", 1)
    tab = thresholds_table()
    assert {"alpha", "cr", "ave", "htmt", "cfi", "tli", "rmsea", "srmr", "kmo", "item_rest_r"} <= set(tab["statistic"])
    assert tab["reference"].str.len().min() > 5
    assert THRESHOLDS["ave"].bound == 0.5


# ---------------------------------------------------------------------------------------------
# the sample study: the scales reach the reliability the generator implies
@pytest.fixture(scope="module")
def sample_survey(study, prepared_sample, sample_frames):
    _, truth = prepared_sample
    return study, sample_frames["2025Q1"]["survey"], truth


def test_sample_scales_reach_generator_reliability(sample_survey):
    study, survey, truth = sample_survey
    lo, hi = study.questionnaire.scale.min, study.questionnaire.scale.max
    tab = rel.scale_reliability(survey, study.scales, reverse=study.reverse_items, scale_range=(lo, hi),
                                level=0.999).set_index("scale")
    for dim, a_pop in truth["population"]["alpha"].items():
        assert tab.loc[dim, "alpha_ci_low"] <= a_pop <= tab.loc[dim, "alpha_ci_high"], (dim, tab.loc[dim, "alpha"], a_pop)
        assert tab.loc[dim, "omega_total"] >= tab.loc[dim, "alpha"] - 1e-3  # ω ≥ α for congeneric items
    # without reverse keying the attitude and efficiency scales collapse
    raw_tab = rel.scale_reliability(survey, study.scales, omega=False, measurement_model=False).set_index("scale")
    assert raw_tab.loc["attitude", "alpha"] < tab.loc["attitude", "alpha"] - 0.1
    model = rel.cfa(survey, study.scales, reverse=study.reverse_items, scale_range=(lo, hi))
    assert model.converged and model.fit["df"] > 0 and 0 <= model.fit["srmr"] < 0.08


def test_measurement_report_from_study(sample_survey):
    study, survey, _ = sample_survey
    rep = rel.measurement_report(survey, study)
    assert set(rep) == {"scales", "items", "kmo", "cfa", "cfa_skipped", "judgements"}
    assert rep["cfa_skipped"] is None
    assert list(rep["scales"]["scale"]) == study.dimension_ids
    assert rep["scales"]["cr"].notna().all() and (rep["scales"]["n"] == len(survey)).all()
    assert rep["kmo"]["kmo"] >= 0.6
    j = rep["judgements"]
    assert {"what", "statistic", "value", "ok", "reason"} == set(j.columns) and j["reason"].str.len().min() > 10
    # the study's reverse-keyed items were recoded: their item-rest correlations are positive
    it = rep["items"].set_index("item")
    assert (it.loc[study.reverse_items, "item_rest_r"] > 0.3).all()


def test_cfa_identification_rule():
    """df = p(p+1)/2 − 2p − k(k−1)/2 must be positive and complete rows must exceed the items."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.integers(1, 6, size=(50, 6)).astype(float), columns=list("abcdef"))
    assert "degrees of freedom" in rel.cfa_unidentified(data, {"f": ["a", "b", "c"]})      # 6 − 6 = 0
    assert rel.cfa_unidentified(data, {"f": ["a", "b", "c", "d"]}) is None                  # 10 − 8 = 2
    assert rel.cfa_unidentified(data, {"f": ["a", "b"], "g": ["c", "d"]}) is None           # 10 − 8 − 1 = 1
    assert "degrees of freedom" in rel.cfa_unidentified(data, {"f": ["a", "b"]})           # 3 − 4 < 0
    assert "complete" in rel.cfa_unidentified(data.head(5), {"f": ["a", "b", "c", "d"]})
