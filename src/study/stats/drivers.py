"""Satisfaction drivers: which dimensions drive overall satisfaction, and by how much.

* :func:`driver_regression` — OLS of the outcome on the predictors (plus optional controls) with
  heteroskedasticity-consistent (HC3) standard errors, standardised coefficients, VIFs, model fit
  and diagnostics with a plain-language judgement.
* :func:`relative_importance` — exact LMG (Lindeman, Merenda & Gold 1980; the Shapley value of
  R², Grömping 2006) computed from the covariance matrix over all 2^p predictor subsets, or
  Johnson's (2000) relative weights; percentile bootstrap confidence intervals, vectorised.
* :func:`ordered_logit_check` — proportional-odds logit of the Likert outcome as a robustness
  check, with the agreement of its driver ranking with the LMG ranking.
* :func:`importance_performance` — importance–performance quadrants (Martilla & James 1977).

References
----------
Grömping, U. (2006). Relative importance for linear regression in R: the package relaimpo.
  Journal of Statistical Software 17(1).
Johnson, J. W. (2000). A heuristic method for estimating the relative weight of predictor
  variables in multiple regression. Multivariate Behavioral Research 35(1), 1-19.
Long, J. S. & Ervin, L. H. (2000). Using heteroscedasticity consistent standard errors in the
  linear regression model. The American Statistician 54, 217-224 (HC3).
Koenker, R. (1981). A note on studentizing a test for heteroscedasticity. J. Econometrics 17.
Martilla, J. A. & James, J. C. (1977). Importance-performance analysis. J. Marketing 41(1).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from study.progress import bar

__all__ = [
    "DriverModel", "driver_regression", "relative_importance", "lmg_from_cov",
    "relative_weights_from_cov", "OrderedLogitCheck", "ordered_logit_check", "importance_performance",
    "QUADRANTS",
]

QUADRANTS = {
    (True, False): "concentrate here",        # important, performing below the line
    (True, True): "keep up the good work",     # important, performing above the line
    (False, False): "low priority",            # less important, performing below the line
    (False, True): "possible overkill",        # less important, performing above the line
}


# ---------------------------------------------------------------------------------------------
# input checks
def _numeric_frame(data: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"{what}: column(s) {missing} not in the data; available: {list(data.columns)}")
    out = {}
    for c in columns:
        s = data[c]
        if s.dtype == bool:
            s = s.astype(float)
        if not pd.api.types.is_numeric_dtype(s):
            raise ValueError(f"{what}: column '{c}' is not numeric (dtype {s.dtype}); convert it or leave it out")
        out[c] = s.astype(float)
    return pd.DataFrame(out, index=data.index)


def _check_lists(outcome: str, predictors) -> list[str]:
    if isinstance(predictors, str):
        predictors = [predictors]
    predictors = list(predictors)
    if not predictors:
        raise ValueError("predictors: give at least one predictor column")
    if len(set(predictors)) != len(predictors):
        raise ValueError(f"predictors: duplicated names in {predictors}")
    if outcome in predictors:
        raise ValueError(f"the outcome '{outcome}' is also listed as a predictor")
    return predictors


# ---------------------------------------------------------------------------------------------
# driver regression
@dataclass
class DriverModel:
    """Result of :func:`driver_regression`.

    ``terms``: one row per term (term, coef, se, t, p, ci_low, ci_high, beta_std, vif);
    ``fit``: n, k, r2, adj_r2, f, f_df1, f_df2, f_p (classical F as in R's ``summary.lm``),
    f_robust, f_robust_p (Wald F with the chosen covariance), cov_type;
    ``diagnostics``: one row per check (check, statistic, p, judgement);
    ``judgement``: a plain-language summary.
    """

    terms: pd.DataFrame
    fit: pd.Series
    diagnostics: pd.DataFrame
    judgement: str
    outcome: str = ""
    predictors: list[str] = field(default_factory=list)


def driver_regression(data: pd.DataFrame, outcome: str, predictors, controls=None, cov_type: str = "HC3",
                      level: float = 0.95) -> DriverModel:
    """OLS driver regression ``outcome ~ predictors + controls`` with robust standard errors.

    coef = (X'X)^-1 X'y; the HC3 covariance (Long & Ervin 2000) is
    (X'X)^-1 X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^-1; t = coef / se, p from t(n - k - 1).
    beta_std = coef · sd(x) / sd(y); VIF_j = 1 / (1 - R²_j) = diag(R_xx^-1) over all regressors.
    Diagnostics: Koenker's studentised Breusch–Pagan test (n·R² of e² on X, χ²(k); as
    ``lmtest::bptest`` default), Jarque–Bera normality of residuals, largest VIF.
    Categorical controls are dummy-coded (first level dropped). Rows with a missing value in any
    used column are dropped (listwise).
    """
    import statsmodels.api as sm
    from statsmodels.stats.diagnostic import het_breuschpagan

    predictors = _check_lists(outcome, predictors)
    controls = [] if controls is None else ([controls] if isinstance(controls, str) else list(controls))
    cov_type = {"hc3": "HC3", "hc1": "HC1", "hc0": "HC0", "hc2": "HC2", "nonrobust": "nonrobust",
                "classical": "nonrobust"}.get(str(cov_type).lower())
    if cov_type is None:
        raise ValueError("cov_type must be one of 'HC3' (default), 'HC0', 'HC1', 'HC2', 'nonrobust'")
    cols = [outcome, *predictors, *controls]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"driver_regression: column(s) {missing} not in the data")
    df = data[cols].dropna()
    y = _numeric_frame(df, [outcome], "outcome")[outcome]
    X = _numeric_frame(df, predictors, "predictors")
    for c in controls:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) or s.dtype == bool:
            X[c] = s.astype(float)
        else:
            X = X.join(pd.get_dummies(s.astype(str), prefix=c, drop_first=True, dtype=float))
    n, k = X.shape
    if n <= k + 1:
        raise ValueError(f"driver_regression: {n} complete rows for {k} regressors; need more rows than regressors + 1")
    const = X.std(ddof=1) == 0
    if const.any():
        raise ValueError(f"driver_regression: column(s) {list(X.columns[const])} are constant; drop them")
    Xc = sm.add_constant(X, has_constant="add")
    model = sm.OLS(y, Xc)
    res = model.fit(cov_type=cov_type) if cov_type != "nonrobust" else model.fit()
    classical = model.fit()
    dfr = n - k - 1
    se = res.bse
    t = res.params / se
    p = 2 * stats.t.sf(np.abs(t), dfr)
    q = stats.t.ppf(0.5 + level / 2, dfr)
    # VIF from the inverse correlation matrix of the regressors
    corr = np.corrcoef(X.to_numpy(), rowvar=False)
    corr = np.atleast_2d(corr)
    try:
        vif = np.diag(np.linalg.inv(corr)) if k > 1 else np.ones(1)
    except np.linalg.LinAlgError:
        vif = np.full(k, np.inf)
    sd_y = y.std(ddof=1)
    beta_std = res.params[X.columns] * X.std(ddof=1) / sd_y
    terms = pd.DataFrame({
        "term": ["(Intercept)", *X.columns],
        "coef": res.params.to_numpy(),
        "se": se.to_numpy(),
        "t": t.to_numpy(),
        "p": p,
        "ci_low": (res.params - q * se).to_numpy(),
        "ci_high": (res.params + q * se).to_numpy(),
        "beta_std": [np.nan, *beta_std.to_numpy()],
        "vif": [np.nan, *vif],
    })
    # fit
    r2 = classical.rsquared
    f = classical.fvalue
    f_p = classical.f_pvalue
    wald = res.wald_test(np.eye(k + 1)[1:], use_f=True, scalar=True)
    fit = pd.Series({
        "n": n, "k": k, "r2": r2, "adj_r2": classical.rsquared_adj, "f": float(f), "f_df1": k, "f_df2": dfr,
        "f_p": float(f_p), "f_robust": float(np.squeeze(wald.statistic)), "f_robust_p": float(np.squeeze(wald.pvalue)),
        "cov_type": cov_type,
    })
    # diagnostics
    resid = classical.resid.to_numpy()
    bp_lm, bp_p, _, _ = het_breuschpagan(resid, Xc.to_numpy(), robust=True)
    jb, jb_p = stats.jarque_bera(resid)[:2]
    max_vif = float(np.max(vif))
    worst = X.columns[int(np.argmax(vif))]
    alpha = 1 - level
    rows = [
        {"check": "Breusch–Pagan (Koenker) heteroskedasticity", "statistic": bp_lm, "p": bp_p,
         "judgement": ("residual variance changes with the predictors; the robust (" + cov_type + ") standard errors account for it"
                       if bp_p < alpha else "no evidence that the residual variance changes with the predictors")},
        {"check": "Jarque–Bera residual normality", "statistic": jb, "p": jb_p,
         "judgement": ("residuals are not normal" + (" but with n = %d the tests on coefficients remain reliable" % n if n >= 200 else
                                                   "; with a small sample, read p-values near the threshold with care")
                       if jb_p < alpha else "no evidence against normal residuals")},
        {"check": "largest variance inflation factor", "statistic": max_vif, "p": np.nan,
         "judgement": (f"serious multicollinearity ({worst}: VIF {max_vif:.1f} ≥ 10): individual coefficients are unstable; "
                       "rely on relative importance (LMG) instead"
                       if max_vif >= 10 else
                       f"moderate multicollinearity ({worst}: VIF {max_vif:.1f} ≥ 5): coefficients of correlated dimensions share variance; "
                       "prefer relative importance for ranking"
                       if max_vif >= 5 else f"multicollinearity is not a concern (largest VIF {max_vif:.1f} < 5)")},
    ]
    diagnostics = pd.DataFrame(rows)
    sig = terms.loc[(terms["term"].isin(predictors)) & (terms["p"] < alpha), "term"].tolist()
    judgement = (f"The model explains {r2:.0%} of the variance of {outcome} (n = {n}; F = {f:.1f}, p = {f_p:.3g}). "
                 f"{len(sig)} of {len(predictors)} predictors are significant at {alpha:g} with {cov_type} standard errors"
                 + (f" ({', '.join(sig)})" if sig else "") + ". " + diagnostics["judgement"].iloc[2][0].upper()
                 + diagnostics["judgement"].iloc[2][1:] + ".")
    return DriverModel(terms=terms, fit=fit, diagnostics=diagnostics, judgement=judgement, outcome=outcome,
                       predictors=predictors)


# ---------------------------------------------------------------------------------------------
# LMG machinery
def _subset_masks(p: int) -> dict[int, np.ndarray]:
    """Index arrays (n_subsets_k, k) of all size-k subsets, and their bit masks, per k = 1..p."""
    out = {}
    for k in range(1, p + 1):
        combos = np.array(list(itertools.combinations(range(p), k)), dtype=np.intp)
        masks = (1 << combos).sum(axis=1)
        out[k] = (combos, masks)
    return out


def _subset_r2(cov: np.ndarray) -> np.ndarray:
    """R² of every predictor subset, from covariance matrices of (y, x_1..x_p).

    cov: (B, p+1, p+1) with y first. Returns (B, 2^p) indexed by bit mask (bit j = predictor j):
    R²(S) = c_yS' C_SS^-1 c_yS / var(y), solved in batches per subset size.
    """
    B, p1, _ = cov.shape
    p = p1 - 1
    vy = cov[:, 0, 0]
    cxy = cov[:, 0, 1:]
    cxx = cov[:, 1:, 1:]
    # work on the correlation scale for numerical stability
    sx = np.sqrt(np.einsum("bii->bi", cxx))
    rxx = cxx / sx[:, :, None] / sx[:, None, :]
    rxy = cxy / sx / np.sqrt(vy)[:, None]
    r2 = np.zeros((B, 1 << p))
    for combos, masks in _subset_masks(p).values():
        sub = rxx[:, combos[:, :, None], combos[:, None, :]]          # (B, m, k, k)
        rhs = rxy[:, combos]                                           # (B, m, k)
        sol = np.linalg.solve(sub, rhs[..., None])[..., 0]
        r2[:, masks] = np.einsum("bmk,bmk->bm", rhs, sol)
    return r2


def _shapley_matrix(p: int) -> np.ndarray:
    """W (2^p, p) so that LMG = R2_by_mask @ W.

    LMG_j = Σ_{S ∌ j} |S|!(p-|S|-1)!/p! · [R²(S ∪ {j}) − R²(S)].
    """
    masks = np.arange(1 << p)
    size = np.array([bin(m).count("1") for m in masks])
    w = np.array([math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)])
    W = np.zeros((1 << p, p))
    for j in range(p):
        has = (masks >> j) & 1 == 1
        W[has, j] = w[size[has] - 1]
        W[~has, j] = -w[np.minimum(size[~has], p - 1)]
    # the empty set has R² = 0; full set never lacks j
    return W


def lmg_from_cov(cov: np.ndarray) -> np.ndarray:
    """Exact LMG shares of R² from one (p+1, p+1) or a batch (B, p+1, p+1) of covariance matrices
    (outcome first). Returns (p,) or (B, p); rows sum to the full-model R²."""
    single = cov.ndim == 2
    cov = cov[None] if single else cov
    p = cov.shape[1] - 1
    out = _subset_r2(cov) @ _shapley_matrix(p)
    return out[0] if single else out


def relative_weights_from_cov(cov: np.ndarray) -> np.ndarray:
    """Johnson's (2000) relative weights from (B, p+1, p+1) or (p+1, p+1) covariance matrices.

    R_xx = Q Λ Q'; Λ_½ = Q Λ^½ Q' (correlations of X with its closest orthogonal Z);
    β* = Λ_½^-1 r_xy (regression of y on Z); ε_j = Σ_k (Λ_½)_jk² β*_k². Σ ε_j = R².
    """
    single = cov.ndim == 2
    cov = cov[None] if single else cov
    cxx = cov[:, 1:, 1:]
    sx = np.sqrt(np.einsum("bii->bi", cxx))
    rxx = cxx / sx[:, :, None] / sx[:, None, :]
    rxy = cov[:, 0, 1:] / sx / np.sqrt(cov[:, 0, 0])[:, None]
    lam, Q = np.linalg.eigh(rxx)
    lam = np.clip(lam, 0, None)
    half = np.einsum("bij,bj,bkj->bik", Q, np.sqrt(lam), Q)
    beta = np.linalg.solve(half, rxy[..., None])[..., 0]
    eps = np.einsum("bjk,bk->bj", half ** 2, beta ** 2)
    return eps[0] if single else eps


def _bootstrap_covs(Z: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 25) -> np.ndarray:
    """Covariance matrices of ``n_boot`` nonparametric bootstrap resamples of the rows of Z.

    Each resample is represented by its count vector c (np.bincount of n uniform draws); then
    Σ_i c_i z_i z_i' and Σ_i c_i z_i come from one matrix product of the counts with the
    precomputed cross-products, so no resampled copy of the data is ever built.
    """
    n, q = Z.shape
    Zc = Z - Z.mean(axis=0)
    iu = np.triu_indices(q)
    P = np.empty((n, len(iu[0]) + q))
    P[:, : len(iu[0])] = Zc[:, iu[0]] * Zc[:, iu[1]]
    P[:, len(iu[0]):] = Zc
    out = np.empty((n_boot, q, q))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n, size=(b, n))
        draws += (np.arange(b) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        S = counts @ P                                        # (b, m + q)
        m = S[:, len(iu[0]):] / n
        cross = np.empty((b, q, q))
        cross[:, iu[0], iu[1]] = S[:, : len(iu[0])] / n
        cross[:, iu[1], iu[0]] = cross[:, iu[0], iu[1]]
        out[start:start + b] = (cross - m[:, :, None] * m[:, None, :]) * (n / (n - 1))
    return out


def _bootstrap_covs_design(Z: np.ndarray, w: np.ndarray, strata: np.ndarray, n_boot: int,
                           rng: np.random.Generator) -> np.ndarray:
    """Weighted covariance matrices of ``n_boot`` stratified bootstrap resamples: in every stratum
    n_h rows drawn with replacement from its n_h rows, each drawn row keeping its design weight
    (the with-replacement bootstrap of a stratified sample; the finite population correction is
    ignored, which is conservative when sampling fractions are small). Scale factors cancel in R²,
    so the covariance is the weighted mean cross-product without a degrees-of-freedom factor."""
    n, q = Z.shape
    groups = [np.flatnonzero(strata == h) for h in pd.unique(strata)]
    out = np.empty((n_boot, q, q))
    for b in range(n_boot):
        counts = np.zeros(n)
        for g in groups:
            np.add.at(counts, g[rng.integers(0, len(g), len(g))], 1.0)
        out[b] = np.cov(Z, rowvar=False, aweights=counts * w, ddof=0)
    return out


def relative_importance(data: pd.DataFrame, outcome: str, predictors, method: str = "lmg", n_boot: int = 1000,
                        seed=None, level: float = 0.95, weights: str | None = None,
                        strata: str | None = None) -> pd.DataFrame:
    """Relative importance of each predictor for ``outcome``: one row per predictor.

    Columns: predictor, importance (share of variance explained attributed to the predictor; the
    column sums to the full-model R²), share (importance / R², sums to 1), rank (1 = most
    important), ci_low, ci_high (percentile bootstrap, ``n_boot`` resamples of rows; NaN when
    ``n_boot=0``). ``attrs``: r2, n, method, n_boot, level.

    method="lmg": exact LMG (Shapley decomposition of R²) over all 2^p subsets from the
    covariance matrix, as ``relaimpo::calc.relimp(type="lmg")`` (Grömping 2006).
    method="relative_weights": Johnson (2000).
    Practical up to about p = 15 predictors (2^p subsets).

    ``weights`` (a column of design weights, e.g. :mod:`study.stats.design`'s ``_weight``) and ``strata``
    (a column): the decomposition of the weighted covariance matrix, the population's LMG under
    the sampling design, with a stratified bootstrap (:func:`_bootstrap_covs_design`). Without them,
    as before.
    """
    predictors = _check_lists(outcome, predictors)
    if weights is not None:
        return _relative_importance_design(data, outcome, predictors, method, n_boot, seed, level, weights, strata)
    if method not in ("lmg", "relative_weights"):
        raise ValueError("method must be 'lmg' or 'relative_weights'")
    p = len(predictors)
    if method == "lmg" and p > 18:
        raise ValueError(f"exact LMG over 2^{p} subsets is too large; use method='relative_weights' or fewer predictors")
    df = _numeric_frame(data, [outcome, *predictors], "relative_importance").dropna()
    n = len(df)
    if n <= p + 1:
        raise ValueError(f"relative_importance: {n} complete rows for {p} predictors; need more rows")
    sd = df.std(ddof=1)
    if (sd == 0).any():
        raise ValueError(f"relative_importance: column(s) {list(sd.index[sd == 0])} are constant; drop them")
    Z = df.to_numpy()
    fn = lmg_from_cov if method == "lmg" else relative_weights_from_cov
    imp = fn(np.cov(Z, rowvar=False))
    r2 = float(imp.sum())
    out = pd.DataFrame({"predictor": predictors, "importance": imp, "share": imp / r2})
    out["rank"] = out["importance"].rank(ascending=False, method="min").astype(int)
    if n_boot and n_boot > 0:
        rng = np.random.default_rng(seed)
        covs = _bootstrap_covs(Z, int(n_boot), rng)
        step = 100  # resamples per batch (each row's result depends on its own covariance only)
        boot = np.concatenate([fn(covs[i:i + step]) for i in bar(range(0, len(covs), step), desc=f"{method.upper()} bootstrap",
                                                                 unit="batch")])
        a = (1 - level) / 2
        out["ci_low"] = np.quantile(boot, a, axis=0)
        out["ci_high"] = np.quantile(boot, 1 - a, axis=0)
        out.attrs["boot"] = boot
    else:
        out["ci_low"] = np.nan
        out["ci_high"] = np.nan
    out.attrs.update({"r2": r2, "n": n, "method": method, "n_boot": int(n_boot or 0), "level": level,
                      "outcome": outcome})
    return out


def _relative_importance_design(data, outcome, predictors, method, n_boot, seed, level, weights, strata) -> pd.DataFrame:
    p = len(predictors)
    if method == "lmg" and p > 18:
        raise ValueError(f"exact LMG over 2^{p} subsets is too large; use method='relative_weights' or fewer predictors")
    cols = [outcome, *predictors]
    df = _numeric_frame(data, cols, "relative_importance")
    keep = df.notna().all(axis=1).to_numpy()
    w = pd.to_numeric(data[weights], errors="coerce").to_numpy(float)[keep]
    if not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError(f"relative_importance: weight column '{weights}' needs a positive weight for every row")
    h = data[strata].astype(str).to_numpy()[keep] if strata is not None else np.zeros(int(keep.sum()), dtype=object)
    Z = df.to_numpy()[keep]
    n = len(Z)
    if n <= p + 1:
        raise ValueError(f"relative_importance: {n} complete rows for {p} predictors; need more rows")
    if (Z.std(axis=0) == 0).any():
        raise ValueError("relative_importance: a column is constant; drop it")
    fn = lmg_from_cov if method == "lmg" else relative_weights_from_cov
    imp = fn(np.cov(Z, rowvar=False, aweights=w, ddof=0))
    r2 = float(imp.sum())
    out = pd.DataFrame({"predictor": predictors, "importance": imp, "share": imp / r2})
    out["rank"] = out["importance"].rank(ascending=False, method="min").astype(int)
    out["ci_low"] = np.nan
    out["ci_high"] = np.nan
    if n_boot and n_boot > 0:
        boot = fn(_bootstrap_covs_design(Z, w, h, int(n_boot), np.random.default_rng(seed)))
        a = (1 - level) / 2
        out["ci_low"] = np.quantile(boot, a, axis=0)
        out["ci_high"] = np.quantile(boot, 1 - a, axis=0)
        out.attrs["boot"] = boot
    out.attrs.update({"r2": r2, "n": n, "method": method, "n_boot": int(n_boot or 0), "level": level,
                      "outcome": outcome, "weights": weights, "strata": strata})
    return out


# ---------------------------------------------------------------------------------------------
# ordered logit robustness check
@dataclass
class OrderedLogitCheck:
    """``terms``: predictor, coef (log-odds), se, p, odds_ratio, std_coef (coef · sd(x)),
    rank_ologit, rank_lmg; ``agreement``: kendall_tau, kendall_p, spearman_rho, spearman_p,
    top_match (same most important driver); ``judgement``: plain language."""

    terms: pd.DataFrame
    agreement: pd.Series
    judgement: str


def ordered_logit_check(data: pd.DataFrame, outcome: str, predictors, lmg: pd.DataFrame | None = None) -> OrderedLogitCheck:
    """Proportional-odds (ordered) logit of the Likert outcome on the predictors
    (``statsmodels.miscmodels.ordinal_model.OrderedModel``, distr="logit"; McCullagh 1980).

    Predictors are ranked by |coef| · sd(x) (the effect of a one-SD change on the log-odds) and the
    ranking is compared with the LMG ranking (computed here when ``lmg`` is not given) by Kendall's
    tau-b and Spearman's rho.
    """
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    predictors = _check_lists(outcome, predictors)
    df = _numeric_frame(data, [outcome, *predictors], "ordered_logit_check").dropna()
    levels = np.sort(df[outcome].unique())
    if len(levels) < 3:
        raise ValueError(f"ordered_logit_check: '{outcome}' has {len(levels)} distinct values; an ordered logit needs at least 3")
    y = pd.Series(pd.Categorical(df[outcome], categories=levels, ordered=True), index=df.index)
    model = OrderedModel(y, df[predictors], distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(method="bfgs", disp=False, maxiter=5000)
        try:  # polish with Newton steps from the BFGS solution
            polished = model.fit(method="newton", disp=False, maxiter=100, start_params=res.params.to_numpy())
            if np.isfinite(polished.llf) and polished.llf >= res.llf - 1e-9:
                res = polished
        except (np.linalg.LinAlgError, ValueError):
            pass
    coef = res.params[predictors]
    se = res.bse[predictors]
    std = coef * df[predictors].std(ddof=1)
    if lmg is None:
        lmg = relative_importance(df, outcome, predictors, n_boot=0)
    lmg_rank = lmg.set_index("predictor")["importance"].rank(ascending=False)
    ol_rank = std.abs().rank(ascending=False)
    terms = pd.DataFrame({
        "predictor": predictors, "coef": coef.to_numpy(), "se": se.to_numpy(), "p": res.pvalues[predictors].to_numpy(),
        "odds_ratio": np.exp(coef.to_numpy()), "std_coef": std.to_numpy(),
        "rank_ologit": ol_rank.to_numpy().astype(int), "rank_lmg": lmg_rank.reindex(predictors).to_numpy().astype(int),
    })
    if len(predictors) >= 2:
        tau, tau_p = stats.kendalltau(terms["rank_ologit"], terms["rank_lmg"])
        rho, rho_p = stats.spearmanr(terms["rank_ologit"], terms["rank_lmg"])
    else:
        tau = rho = 1.0
        tau_p = rho_p = np.nan
    top = terms.loc[terms["rank_ologit"].idxmin(), "predictor"] == terms.loc[terms["rank_lmg"].idxmin(), "predictor"]
    agreement = pd.Series({"kendall_tau": tau, "kendall_p": tau_p, "spearman_rho": rho, "spearman_p": rho_p,
                           "top_match": bool(top), "n": len(df), "converged": bool(res.mle_retvals.get("converged", True))})
    strength = "strong" if tau >= 0.7 else "moderate" if tau >= 0.4 else "weak"
    judgement = (f"The ordered logit ranks the drivers in {strength} agreement with LMG (Kendall tau = {tau:.2f}, "
                 f"Spearman rho = {rho:.2f}); the top driver is {'the same' if top else 'different'}. "
                 + ("Treating the Likert outcome as interval-scaled does not change the conclusions."
                    if tau >= 0.7 and top else "Read the driver ranking with care: it depends on the model."))
    return OrderedLogitCheck(terms=terms, agreement=agreement, judgement=judgement)


# ---------------------------------------------------------------------------------------------
# importance-performance analysis
def importance_performance(importance, performance, importance_line: float | None = None,
                           performance_line: float | None = None, labels: dict | None = None) -> pd.DataFrame:
    """Importance–performance analysis (Martilla & James 1977).

    importance: Series indexed by dimension (e.g. LMG share) or the DataFrame returned by
    :func:`relative_importance` (its ``share`` column is used); performance: Series of 0-100 scores
    indexed by dimension. Quadrant lines default to the means over the dimensions (stated in the
    columns ``importance_line``/``performance_line`` and in ``attrs``). A dimension at or above the
    importance line is "important"; at or above the performance line "performing".
    Quadrants: important & below → "concentrate here"; important & above → "keep up the good
    work"; less important & below → "low priority"; less important & above → "possible overkill".
    """
    if isinstance(importance, pd.DataFrame):
        if not {"predictor", "share"} <= set(importance.columns):
            raise ValueError("importance: a DataFrame must have the columns 'predictor' and 'share' (from relative_importance)")
        importance = importance.set_index("predictor")["share"]
    importance = pd.Series(importance, dtype=float)
    performance = pd.Series(performance, dtype=float)
    missing = sorted(set(importance.index) ^ set(performance.index))
    if missing:
        raise ValueError(f"importance and performance must cover the same dimensions; unmatched: {missing}")
    performance = performance.reindex(importance.index)
    il = float(importance.mean()) if importance_line is None else float(importance_line)
    pl = float(performance.mean()) if performance_line is None else float(performance_line)
    imp_hi = importance >= il
    perf_hi = performance >= pl
    out = pd.DataFrame({
        "dimension": importance.index,
        "importance": importance.to_numpy(),
        "performance": performance.to_numpy(),
        "quadrant": [QUADRANTS[(bool(a), bool(b))] for a, b in zip(imp_hi, perf_hi)],
        "importance_line": il,
        "performance_line": pl,
    })
    if labels:
        out.insert(1, "label", [labels.get(d, d) for d in out["dimension"]])
    out.attrs.update({
        "importance_line": il, "performance_line": pl,
        "lines": (f"quadrant lines: importance = {il:.3g} ({'mean of the dimensions' if importance_line is None else 'given'}), "
                  f"performance = {pl:.3g} ({'mean of the dimensions' if performance_line is None else 'given'})"),
    })
    return out
