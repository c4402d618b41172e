"""Reliability and validity of the questionnaire's scales, to the standard of psych, lavaan, semTools.

Every function takes a DataFrame of item responses and returns tidy DataFrames / Series / a
dataclass; nothing here reads or writes files. Reverse-keyed items must be recoded first
(:func:`recode_reverse`, or pass ``reverse=`` with the scale range); missing data are handled
listwise per scale (per item set for KMO / the measurement model) and every result states its n.

Conventions (chosen to match R):

- Cronbach's α from the item covariance matrix, ``α = k/(k−1) · (1 − tr C / 1'C1)``
  (psych::alpha ``raw_alpha``); standardised α from the correlation matrix,
  ``k r̄ / (1 + (k−1) r̄)`` (``std.alpha``, ``average_r`` = r̄).
- Feldt, Woodruff & Salih (1987) interval: ``1 − (1−α) F_{1−γ/2}(n−1, (n−1)(k−1))`` and
  ``1 − (1−α) F_{γ/2}(…)`` (psych::alpha.ci).
- BCa bootstrap (Efron 1987), ``z0 = Φ⁻¹(#{α* < α̂}/B)``, acceleration from the exact
  jackknife, percentiles by linear interpolation; resamples drawn as count vectors so all
  scales and resamples are evaluated with one matrix product per chunk.
- ML CFA as lavaan: sample covariance with divisor N, ``F_ML = log|Σ| + tr(SΣ⁻¹) − log|S| − p``,
  ``χ² = N · F_ML`` (lavaan's default ``likelihood = "normal"``), marker-variable identification,
  baseline = independence model, RMSEA and its 90 % interval with N, SRMR as lavaan's ``srmr``
  (Bentler: residual correlations, diagonal included). Estimation: BFGS with the analytic
  gradient of F_ML (gtol 1e-10) from principal-axis starting values per factor, so that
  estimates agree with lavaan to ≲1e-5; hand-written because it is ~60 lines against a whole
  SEM package (semopy, used earlier only for starting values; it pulled in sympy).
- ω_total (McDonald 1999) from a one-factor ML model of each scale alone,
  ``(Σλ)²ψ / ((Σλ)²ψ + Σθ)``; CR (Jöreskog 1971; Fornell & Larcker 1981) and AVE from the
  measurement model's standardised loadings λ*, ``(Σλ*)² / ((Σλ*)² + Σ(1−λ*²))`` and mean λ*².
  ``omega_obs`` (semTools::compRelSEM's default) divides (Σλ)²ψ by the observed variance of the
  sum score instead.
- HTMT (Henseler, Ringle & Sarstedt 2015): mean heterotrait correlation over the geometric mean
  of the two mean monotrait correlations (absolute item correlations; semTools::htmt).

References: Cronbach (1951) Psychometrika 16, 297-334; Feldt, Woodruff & Salih (1987) Applied
Psychological Measurement 11, 93-103; Efron (1987) JASA 82, 171-185; Kaiser (1970) Psychometrika
35, 401-415; Bartlett (1950); Jöreskog (1969) Psychometrika 34, 183-202; McDonald (1999) Test
theory; Hu & Bentler (1999); Henseler et al. (2015); thresholds in :mod:`study.thresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from study.i18n import NP_
from study.progress import bar
from study.thresholds import judge

__all__ = [
    "recode_reverse", "scale_reliability", "item_statistics", "kmo_bartlett", "cfa", "CFAResult",
    "one_factor_omega", "feldt_ci", "cronbach_alpha", "judge_reliability", "measurement_report",
]

Scales = Mapping[str, Sequence[str]]


# ---------------------------------------------------------------------------------------------
# Input handling
def _check_columns(data: pd.DataFrame, items: Sequence[str], where: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"{where}: expected a pandas DataFrame of item responses, got {type(data).__name__}")
    missing = [c for c in items if c not in data.columns]
    if missing:
        raise ValueError(f"{where}: item column(s) {missing} are not in the data; available columns: {list(data.columns)[:40]}")


def _numeric(data: pd.DataFrame, items: Sequence[str], where: str) -> pd.DataFrame:
    _check_columns(data, items, where)
    out = {}
    for c in items:
        s = data[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            conv = pd.to_numeric(s, errors="coerce")
            if conv.notna().sum() < s.notna().sum():
                raise ValueError(f"{where}: column '{c}' holds non-numeric values; recode the responses to numbers first")
            s = conv
        out[c] = s.astype("float64")
    return pd.DataFrame(out, index=data.index)


def _complete(data: pd.DataFrame, items: Sequence[str], where: str, min_k: int = 2) -> np.ndarray:
    items = list(items)
    if len(items) < min_k:
        raise ValueError(f"{where}: needs at least {min_k} items, got {items}")
    if len(set(items)) != len(items):
        raise ValueError(f"{where}: an item is listed twice in {items}")
    x = _numeric(data, items, where).dropna().to_numpy()
    if x.shape[0] < 3:
        raise ValueError(f"{where}: only {x.shape[0]} complete response(s) on items {items}; need at least 3")
    sd = x.std(axis=0)
    const = [c for c, s in zip(items, sd) if s == 0]
    if const:
        raise ValueError(f"{where}: item(s) {const} have zero variance in the complete responses; drop them from the scale")
    return x


def _check_scales(scales: Scales) -> dict[str, list[str]]:
    if not isinstance(scales, Mapping) or not scales:
        raise ValueError("scales: expected a mapping of scale name -> list of item columns, e.g. study.scales")
    return {str(k): list(v) for k, v in scales.items()}


def recode_reverse(data: pd.DataFrame, items: Sequence[str], lo: float, hi: float) -> pd.DataFrame:
    """Return a copy of ``data`` with reverse-keyed ``items`` recoded as ``lo + hi − x``.

    Values outside [lo, hi] are an error (they would silently become out-of-range scores).
    """
    if not lo < hi:
        raise ValueError(f"recode_reverse: scale minimum ({lo}) must be smaller than maximum ({hi})")
    items = list(items)
    _check_columns(data, items, "recode_reverse")
    out = data.copy()
    for c in items:
        x = pd.to_numeric(out[c], errors="coerce")
        bad = x.notna() & ((x < lo) | (x > hi))
        if bad.any():
            raise ValueError(f"recode_reverse: column '{c}' has {int(bad.sum())} value(s) outside [{lo:g}, {hi:g}] "
                             f"(e.g. {x[bad].iloc[0]:g}); fix or remove them before recoding")
        out[c] = (lo + hi) - x
    return out


def _maybe_reverse(data, reverse, scale_range):
    if reverse:
        if scale_range is None:
            raise ValueError("reverse items given without scale_range=(min, max) of the response scale")
        return recode_reverse(data, [r for r in reverse if r in data.columns], *scale_range)
    return data


# ---------------------------------------------------------------------------------------------
# Closed-form reliability
def cronbach_alpha(cov: np.ndarray) -> float:
    """Cronbach's α from a covariance matrix: ``k/(k−1) · (1 − tr C / 1'C1)``."""
    k = cov.shape[0]
    return k / (k - 1) * (1.0 - np.trace(cov) / cov.sum())


def _std_alpha(corr: np.ndarray) -> tuple[float, float]:
    k = corr.shape[0]
    rbar = (corr.sum() - k) / (k * (k - 1))
    return k * rbar / (1 + (k - 1) * rbar), rbar


def feldt_ci(alpha: float, n: int, k: int, level: float = 0.95) -> tuple[float, float]:
    """Feldt, Woodruff & Salih (1987) interval for α (as psych::alpha.ci).

    ``low = 1 − (1−α)·F⁻¹(1−γ/2; n−1, (n−1)(k−1))``, ``high = 1 − (1−α)·F⁻¹(γ/2; …)``, γ = 1 − level.
    """
    g = 1.0 - level
    d1, d2 = n - 1, (n - 1) * (k - 1)
    return (1 - (1 - alpha) * stats.f.ppf(1 - g / 2, d1, d2), 1 - (1 - alpha) * stats.f.ppf(g / 2, d1, d2))


# ---------------------------------------------------------------------------------------------
# Vectorised BCa bootstrap of α for several scales sharing the same complete rows
def _alpha_from_moments(mx: np.ndarray, ex2: np.ndarray, mt: np.ndarray, et2: np.ndarray,
                        slices: list[slice]) -> np.ndarray:
    """α for each scale from first/second moments; arrays have a leading resample axis.

    mx: (B, K) item means; ex2: (B, S) per-scale Σ E[x_i²]; mt, et2: (B, S) E[T], E[T²] of the scale total.
    """
    out = np.empty((mx.shape[0], len(slices)))
    for s, sl in enumerate(slices):
        k = sl.stop - sl.start
        sum_var = ex2[:, s] - (mx[:, sl] ** 2).sum(axis=1)
        var_t = et2[:, s] - mt[:, s] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, s] = k / (k - 1) * (1.0 - sum_var / var_t)
    return out


def _bootstrap_alpha(x: np.ndarray, slices: list[slice], n_boot: int, level: float,
                     rng: np.random.Generator, chunk_cells: int = 1 << 24) -> tuple[np.ndarray, np.ndarray]:
    """BCa intervals of α for the scales (column ``slices`` of ``x``) on the same rows.

    Each resample is a vector of counts (how often each row is drawn, tallied from the B×N
    uniform indices drawn at once per chunk), so the resampled moments are one matrix product ``counts @ Z`` with the N×c matrix
    Z of per-row terms (items, Σx², total, total²): O(B·N·c) flops, no per-resample Python loop.
    """
    n = x.shape[0]
    x = x - x.mean(axis=0)  # α is shift-invariant; centring keeps the moments well-conditioned
    q = np.column_stack([(x[:, sl] ** 2).sum(axis=1) for sl in slices])
    t = np.column_stack([x[:, sl].sum(axis=1) for sl in slices])
    z = np.column_stack([x, q, t, t ** 2])
    K, S = x.shape[1], len(slices)

    def split(m):
        return m[:, :K], m[:, K:K + S], m[:, K + S:K + 2 * S], m[:, K + 2 * S:]

    full = z.mean(axis=0, keepdims=True)
    theta = _alpha_from_moments(*split(full), slices)[0]

    boots = np.empty((n_boot, S))
    per = max(1, min(n_boot, chunk_cells // max(n, 1)))
    done = 0
    with bar(total=n_boot, desc="α bootstrap", unit="resample") as shown:
        while done < n_boot:
            b = min(per, n_boot - done)
            idx = rng.integers(0, n, size=(b, n))  # all index vectors of the chunk in one draw
            counts = np.empty((b, n))
            for i in range(b):  # row-wise bincount: the n-sized tally stays in cache (2x faster than one flat bincount)
                counts[i] = np.bincount(idx[i], minlength=n)
            boots[done:done + b] = _alpha_from_moments(*split(counts @ z / n), slices)
            done += b
            shown.update(b)

    # exact jackknife: leave-one-out moments from the totals, all rows at once
    tot = z.sum(axis=0)
    jack = _alpha_from_moments(*split((tot - z) / (n - 1)), slices)

    low, high = np.full(S, np.nan), np.full(S, np.nan)
    g = 1.0 - level
    zq = stats.norm.ppf([g / 2, 1 - g / 2])
    for s in range(S):
        bs = boots[:, s][np.isfinite(boots[:, s])]
        prop = np.mean(bs < theta[s])
        if not 0 < prop < 1:
            continue
        z0 = stats.norm.ppf(prop)
        d = jack[:, s].mean() - jack[:, s]
        den = 6.0 * (d ** 2).sum() ** 1.5
        a = (d ** 3).sum() / den if den > 0 else 0.0
        adj = stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
        low[s], high[s] = np.quantile(bs, adj)
    return low, high


# ---------------------------------------------------------------------------------------------
# ML confirmatory factor analysis (lavaan conventions)
@dataclass
class _MLFit:
    items: list[str]
    factors: list[str]
    lam: np.ndarray    # p x m loadings (marker = 1)
    phi: np.ndarray    # m x m factor covariance
    theta: np.ndarray  # p residual variances
    S: np.ndarray      # p x p sample covariance, divisor N
    n: int
    fmin: float        # F_ML at the optimum
    converged: bool

    @property
    def sigma(self) -> np.ndarray:
        return self.lam @ self.phi @ self.lam.T + np.diag(self.theta)


def _ml_objective(S: np.ndarray, logdet_s: float):
    p = S.shape[0]

    def f(sigma):
        try:  # Σ must be positive definite (a positive determinant is not enough)
            L = np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            return np.inf, None
        logdet = 2.0 * np.log(np.diag(L)).sum()
        inv = np.linalg.inv(sigma)
        val = logdet + np.trace(S @ inv) - logdet_s - p
        g = inv - inv @ S @ inv  # dF/dΣ (symmetric)
        return val, g

    return f


def _start_values(S: np.ndarray, blocks: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting values of a simple-structure CFA with marker identification (first item of a block).

    Per factor, a one-factor principal-axis step on its block of S: communalities from the squared
    multiple correlations (in covariance units, ``S_ii − 1/(S⁻¹)_ii``; for two items ``S_12²/S_jj``),
    loadings from the leading eigenpair of the reduced block, scaled so that the marker's is 1, the
    factor variance the marker's communality; θ the remaining variance (at least 5 % of S_ii); factor
    covariances by least squares on the between-block covariances, Φ shrunk towards its diagonal
    until positive definite. Close enough to the optimum for the BFGS step (no other SEM package
    needed).
    """
    p, m = S.shape[0], len(blocks)
    lam, phi, theta = np.zeros((p, m)), np.zeros((m, m)), np.diag(S).astype(float).copy()
    for j, idx in enumerate(blocks):
        C = S[np.ix_(idx, idx)]
        d = np.diag(C)
        if len(idx) == 2:
            h = np.full(2, abs(C[0, 1])) * np.sqrt(d / d[::-1])
        else:
            try:
                h = d - 1.0 / np.diag(np.linalg.inv(C))
            except np.linalg.LinAlgError:
                h = d * 0.5
        R = C.copy()
        R[np.diag_indices(len(idx))] = np.clip(h, 0.05 * d, 0.95 * d)
        w, V = np.linalg.eigh(R)
        ld = V[:, -1] * np.sqrt(max(w[-1], 1e-12))
        if ld[0] < 0:
            ld = -ld
        if abs(ld[0]) < 1e-3 * np.sqrt(d[0]):      # a marker unrelated to its factor: start flat
            ld = np.sqrt(0.5 * d)
        lam[idx, j] = ld / ld[0]
        phi[j, j] = ld[0] ** 2
        theta[idx] = np.maximum(d - ld ** 2, 0.05 * d)
    for a in range(m):
        for b in range(a):
            la, lb = lam[blocks[a], a], lam[blocks[b], b]
            outer = np.outer(la, lb)
            denom = (outer ** 2).sum()
            phi[a, b] = phi[b, a] = (S[np.ix_(blocks[a], blocks[b])] * outer).sum() / denom if denom > 0 else 0.0
    sd = np.sqrt(np.diag(phi))
    corr = phi / np.outer(sd, sd)
    for shrink in (1.0, 0.9, 0.7, 0.5, 0.0):
        c = corr * shrink
        np.fill_diagonal(c, 1.0)
        if np.linalg.eigvalsh(c)[0] > 1e-3:
            break
    return lam, c * np.outer(sd, sd), theta


def _fit_ml_cfa(x: np.ndarray, items: list[str], pattern: dict[str, list[str]]) -> _MLFit:
    """ML CFA: lavaan's F_ML minimised by BFGS with its analytic gradient, from :func:`_start_values`."""
    n, p = x.shape
    S = np.cov(x, rowvar=False, bias=True)
    factors = list(pattern)
    m = len(factors)
    pos = {c: i for i, c in enumerate(items)}
    # free-parameter layout: non-marker loadings, lower triangle of Φ, θ
    lam_free = [(pos[it], j) for j, f in enumerate(factors) for it in pattern[f][1:]]
    markers = [(pos[pattern[f][0]], j) for j, f in enumerate(factors)]
    tril = np.tril_indices(m)

    lam0, phi0, theta0 = _start_values(S, [[pos[it] for it in pattern[f]] for f in factors])

    def unpack(v):
        lam = np.zeros((p, m))
        for r, j in markers:
            lam[r, j] = 1.0
        k = len(lam_free)
        for (r, j), val in zip(lam_free, v[:k]):
            lam[r, j] = val
        nphi = len(tril[0])
        phi = np.zeros((m, m))
        phi[tril] = v[k:k + nphi]
        phi = phi + np.tril(phi, -1).T
        theta = v[k + nphi:]
        return lam, phi, theta

    v0 = np.concatenate([[lam0[r, j] for r, j in lam_free], phi0[tril], theta0])
    logdet_s = np.linalg.slogdet(S)[1]
    obj = _ml_objective(S, logdet_s)
    lam_rows = np.array([r for r, _ in lam_free], dtype=int)
    lam_cols = np.array([j for _, j in lam_free], dtype=int)
    offdiag = (tril[0] != tril[1])

    def fun(v):
        lam, phi, theta = unpack(v)
        val, g = obj(lam @ phi @ lam.T + np.diag(theta))
        if g is None:
            return 1e10, np.zeros_like(v)
        glam = 2.0 * g @ lam @ phi
        gphi_full = lam.T @ g @ lam
        gphi = gphi_full[tril] * np.where(offdiag, 2.0, 1.0)
        return val, np.concatenate([glam[lam_rows, lam_cols], gphi, np.diag(g)])

    def descend(v):
        # BFGS stops early when a line search fails (a step left the positive-definite region); it
        # is started again from where it stopped, with a fresh Hessian approximation, while that helps
        fmin = fun(v)[0]
        for _ in range(20):
            res = optimize.minimize(fun, v, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000})
            better = res.fun < fmin - 1e-14 * max(1.0, abs(fmin))
            if res.fun <= fmin:
                v, fmin = res.x, float(res.fun)
            if np.max(np.abs(fun(v)[1])) < 1e-5 or not better:
                break
        return v, fmin, bool(np.max(np.abs(fun(v)[1])) < 1e-5)

    best = descend(v0)
    if not best[2]:  # no stationary point from there (e.g. a variance running off): also try a flat start
        flat = np.concatenate([np.ones(len(lam_free)), np.diag([max(S[r, r] * 0.5, 1e-3) for r, _ in markers])[tril],
                               np.diag(S) * 0.5])
        other = descend(flat)
        best = min(best, other, key=lambda r: (not r[2], r[1]))
    v, fmin, converged = best
    lam, phi, theta = unpack(v)
    return _MLFit(items, factors, lam, phi, theta, S, n, float(fmin), converged)


def _rmsea_ci(chi2: float, df: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """lavaan's RMSEA interval: the non-centrality λ with P(χ²_df(λ) ≤ X²) = 0.95 / 0.05, √(λ/(N·df))."""
    if df <= 0:
        return np.nan, np.nan
    upper_p, lower_p = (1 + level) / 2, (1 - level) / 2

    def find(target):
        f = lambda lam: stats.ncx2.cdf(chi2, df, lam) - target if lam > 0 else stats.chi2.cdf(chi2, df) - target  # noqa: E731
        if f(0.0) < 0:  # even λ = 0 is too large
            return 0.0
        hi = max(chi2, 1.0)
        while f(hi) > 0:
            hi *= 2
        return optimize.brentq(f, 0.0, hi, xtol=1e-12, rtol=1e-14)

    lam_lo, lam_hi = find(upper_p), find(lower_p)
    return float(np.sqrt(lam_lo / (n * df))), float(np.sqrt(lam_hi / (n * df)))


def _fit_measures(fit: _MLFit, n_free: int) -> pd.Series:
    S, n = fit.S, fit.n
    p = S.shape[0]
    chi2 = n * fit.fmin
    df = p * (p + 1) // 2 - n_free
    pval = stats.chi2.sf(chi2, df) if df > 0 else np.nan
    # baseline: independence model, Σ = diag(S)
    chi2_b = n * (np.log(np.diag(S)).sum() - np.linalg.slogdet(S)[1])
    df_b = p * (p - 1) // 2
    d, d_b = max(chi2 - df, 0.0), max(chi2_b - df_b, 0.0)
    cfi = 1.0 - d / max(d, d_b) if max(d, d_b) > 0 else 1.0
    tli = ((chi2_b / df_b) - (chi2 / df)) / ((chi2_b / df_b) - 1.0) if df > 0 else np.nan
    rmsea = np.sqrt(max(chi2 / df - 1.0, 0.0) / n) if df > 0 else np.nan
    lo, hi = _rmsea_ci(chi2, df, n)
    sd = np.sqrt(np.diag(S))
    resid = (S - fit.sigma) / np.outer(sd, sd)
    srmr = np.sqrt(np.mean(resid[np.tril_indices(p)] ** 2))
    return pd.Series({"chi2": chi2, "df": float(df), "p": pval, "cfi": cfi, "tli": tli, "rmsea": rmsea,
                      "rmsea_ci_low": lo, "rmsea_ci_high": hi, "srmr": srmr, "n": float(n),
                      "chi2_baseline": chi2_b, "df_baseline": float(df_b)}, name="fit")


@dataclass
class CFAResult:
    """The measurement model: all scales as correlated factors, ML (lavaan conventions).

    Attributes
    ----------
    fit : Series  chi2, df, p, cfi, tli, rmsea, rmsea_ci_low, rmsea_ci_high, srmr (+ n, baseline).
    loadings : DataFrame  factor, item, loading (unstandardised, marker = 1), loading_std (std.all).
    factor_correlations : DataFrame  factor x factor (standardised Φ).
    validity : DataFrame  one row per factor: n, k, cr, ave, sqrt_ave, max_r (largest |r| with another
        factor), omega_obs (semTools::compRelSEM default: (Σλ)²ψ / observed variance of the sum).
    fornell_larcker : DataFrame  factor x factor, √AVE on the diagonal, correlations off it.
    htmt : DataFrame  factor x factor heterotrait-monotrait ratios (NaN on the diagonal), Henseler et
        al. (2015) = semTools::htmt(htmt2 = FALSE); judged against 0.85.
    htmt2 : DataFrame  the geometric-mean variant (Roemer et al. 2021) = semTools::htmt() default.
    judgements : DataFrame  what, statistic, value, ok, reason.
    improper : list of (kind, where) pairs from :func:`admissibility` -- empty when the solution is
        admissible (lavaan's ``lavInspect(fit, "post.check")`` is TRUE).
    """

    n: int
    fit: pd.Series
    loadings: pd.DataFrame
    factor_correlations: pd.DataFrame
    validity: pd.DataFrame
    fornell_larcker: pd.DataFrame
    htmt: pd.DataFrame
    htmt2: pd.DataFrame
    converged: bool
    judgements: pd.DataFrame = field(default_factory=pd.DataFrame)
    improper: list = field(default_factory=list)

    @property
    def admissible(self) -> bool:
        """Converged to an admissible solution: fit, CR and AVE may be read."""
        return self.converged and not self.improper


def admissibility(fit: _MLFit, tol: float = 0.0) -> list[tuple[str, str]]:
    """Improper solutions (Heywood cases), as lavaan's post-estimation check finds them.

    lavaan (``lav_object_post_check``) warns when an observed variable's residual variance is
    negative, a latent variance is negative, or the latent covariance matrix is not positive
    definite; ``lavInspect(fit, "post.check")`` is then FALSE. The same three checks, on the same
    estimates: ``negative_residual_variance`` (item), ``negative_factor_variance`` (factor),
    ``factor_covariance_not_pd`` (the model). A standardised loading above 1 goes with a negative
    residual variance, so it is not a fourth check. Hand-written: scipy has no CFA and the checks
    are three comparisons.
    """
    out = [("negative_residual_variance", it) for it, t in zip(fit.items, fit.theta) if t < -tol]
    out += [("negative_factor_variance", f) for f, v in zip(fit.factors, np.diag(fit.phi)) if v < -tol]
    if len(fit.factors) > 1 and np.linalg.eigvalsh(fit.phi).min() <= tol:
        out.append(("factor_covariance_not_pd", "model"))
    return out


def _htmt(corr: pd.DataFrame, scales: dict[str, list[str]], geometric: bool = False) -> pd.DataFrame:
    """HTMT (Henseler et al. 2015) from absolute item correlations; ``geometric=True`` gives HTMT2
    (Roemer, Schuberth & Henseler 2021: geometric instead of arithmetic means; semTools' default)."""
    r = corr.abs()
    names = list(scales)
    avg = (lambda v: float(np.exp(np.mean(np.log(v))))) if geometric else (lambda v: float(np.mean(v)))
    mono = {}
    for f, its in scales.items():
        sub = r.loc[its, its].to_numpy()
        mono[f] = avg(sub[np.triu_indices(len(its), 1)])
    out = pd.DataFrame(np.nan, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            het = avg(r.loc[scales[a], scales[b]].to_numpy().ravel())
            out.loc[a, b] = out.loc[b, a] = het / np.sqrt(mono[a] * mono[b])
    return out


def cfa(data: pd.DataFrame, scales: Scales, reverse: Sequence[str] | None = None,
        scale_range: tuple[float, float] | None = None) -> CFAResult:
    """Fit the measurement model (every scale a factor, factors correlated) by ML, as lavaan::cfa.

    Listwise deletion over all items. ``loading_std`` is lavaan's ``std.all``:
    ``λ_ij √φ_jj / √Σ_ii``. CR = (Σλ*)² / ((Σλ*)² + Σ(1 − λ*²)), AVE = mean λ*² per factor
    (Fornell & Larcker 1981). Fornell–Larcker: √AVE against the factor correlations; HTMT from the
    item correlations (Henseler et al. 2015).
    """
    scales = _check_scales(scales)
    data = _maybe_reverse(data, reverse, scale_range)
    items = [it for its in scales.values() for it in its]
    if len(set(items)) != len(items):
        raise ValueError("cfa: an item belongs to two scales; each item must load on one factor")
    for f, its in scales.items():
        if len(its) < 2 or (len(its) < 3 and len(scales) == 1):
            raise ValueError(f"cfa: scale '{f}' has {len(its)} item(s); a factor needs 3 items on its own, or 2 with other factors")
    x = _complete(data, items, "cfa", min_k=3)
    if x.shape[0] <= len(items):
        raise ValueError(f"cfa: {x.shape[0]} complete responses for {len(items)} items; need more respondents than items")
    fit = _fit_ml_cfa(x, items, scales)
    m, p = len(scales), len(items)
    n_free = (p - m) + m * (m + 1) // 2 + p
    fm = _fit_measures(fit, n_free)

    sigma_diag = np.diag(fit.sigma)
    fsd = np.sqrt(np.diag(fit.phi))
    rows = []
    for j, f in enumerate(fit.factors):
        for it in scales[f]:
            r = items.index(it)
            lam = fit.lam[r, j]
            rows.append({"factor": f, "item": it, "loading": lam, "loading_std": lam * fsd[j] / np.sqrt(sigma_diag[r])})
    loadings = pd.DataFrame(rows)
    fcor = pd.DataFrame(fit.phi / np.outer(fsd, fsd), index=fit.factors, columns=fit.factors)

    val = []
    for j, f in enumerate(fit.factors):
        ls = loadings.loc[loadings["factor"] == f, "loading_std"].to_numpy()
        lam_raw = loadings.loc[loadings["factor"] == f, "loading"].to_numpy()
        cr = ls.sum() ** 2 / (ls.sum() ** 2 + (1 - ls ** 2).sum())
        ave = float(np.mean(ls ** 2))
        others = fcor.loc[f].drop(f).abs()
        idx = [items.index(it) for it in scales[f]]
        obs_var = fit.S[np.ix_(idx, idx)].sum()
        val.append({"factor": f, "n": fit.n, "k": len(ls), "cr": cr, "ave": ave, "sqrt_ave": np.sqrt(ave),
                    "max_r": others.max() if len(others) else np.nan,
                    "omega_obs": lam_raw.sum() ** 2 * fit.phi[j, j] / obs_var})
    validity = pd.DataFrame(val)
    fl = fcor.copy()
    for f, s in zip(validity["factor"], validity["sqrt_ave"]):
        fl.loc[f, f] = s
    corr = pd.DataFrame(np.corrcoef(x, rowvar=False), index=items, columns=items)
    htmt = _htmt(corr, scales)
    htmt2 = _htmt(corr, scales, geometric=True)

    j = []
    for stat in ("cfi", "tli", "rmsea", "srmr"):
        ok, why = judge(stat, fm[stat])
        j.append({"what": "model", "statistic": stat, "value": fm[stat], "ok": ok, "reason": why})
    for _, r in validity.iterrows():
        for stat in ("cr", "ave"):
            ok, why = judge(stat, r[stat])
            j.append({"what": r["factor"], "statistic": stat, "value": r[stat], "ok": ok, "reason": why})
        if m > 1:
            margin = r["sqrt_ave"] - r["max_r"]
            ok, why = judge("fornell_larcker_margin", margin)
            j.append({"what": r["factor"], "statistic": "fornell_larcker_margin", "value": margin, "ok": ok, "reason": why})
    for _, r in loadings.iterrows():
        ok, why = judge("loading_std", r["loading_std"])
        if not ok:
            j.append({"what": f"{r['factor']}/{r['item']}", "statistic": "loading_std", "value": r["loading_std"], "ok": ok, "reason": why})
    names = list(scales)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            ok, why = judge("htmt", htmt.loc[a, b])
            j.append({"what": f"{a}~{b}", "statistic": "htmt", "value": htmt.loc[a, b], "ok": ok, "reason": why})
    if not fit.converged:
        j.append({"what": "model", "statistic": "convergence", "value": np.nan, "ok": False,
                  "reason": "the ML estimate did not converge to a stationary point; do not interpret the fit"})
    improper = admissibility(fit)
    for kind, where in improper:
        j.append({"what": where, "statistic": kind, "value": np.nan, "ok": False,
                  "reason": "improper solution (Heywood case); do not interpret the fit, CR or AVE"})
    return CFAResult(fit.n, fm, loadings, fcor, validity, fl, htmt, htmt2, fit.converged, pd.DataFrame(j), improper)


def one_factor_omega(data: pd.DataFrame, items: Sequence[str]) -> dict:
    """McDonald's ω_total from a one-factor ML model of ``items`` alone (listwise).

    ``ω = (Σλ)²ψ / ((Σλ)²ψ + Σθ)`` with λ, ψ, θ the ML estimates (identical under any
    identification). Needs at least 3 items (2 items do not identify a factor). Returns a dict
    with n, omega_total, omega_obs (denominator = observed variance of the sum score), converged.
    """
    items = list(items)
    if len(items) < 3:
        return {"n": np.nan, "omega_total": np.nan, "omega_obs": np.nan, "converged": False}
    x = _complete(data, items, "one_factor_omega", min_k=3)
    fit = _fit_ml_cfa(x, items, {"f": items})
    lam = fit.lam[:, 0]
    common = lam.sum() ** 2 * fit.phi[0, 0]
    return {"n": fit.n, "omega_total": common / (common + fit.theta.sum()),
            "omega_obs": common / fit.S.sum(), "converged": fit.converged}


# ---------------------------------------------------------------------------------------------
# Public: scale-level and item-level tables
def scale_reliability(data: pd.DataFrame, scales: Scales, ci: str = "feldt", level: float = 0.95,
                      n_boot: int = 2000, seed: int | None = None, *, reverse: Sequence[str] | None = None,
                      scale_range: tuple[float, float] | None = None, omega: bool = True,
                      measurement_model: bool = True) -> pd.DataFrame:
    """Reliability of each scale: one row per scale.

    Columns: scale, n, k, alpha, alpha_std, alpha_ci_low, alpha_ci_high, omega_total, cr, ave,
    mean_inter_item_r, plus omega_obs (semTools::compRelSEM-style ω of the measurement model),
    ci_method, n_cfa (respondents in the measurement model).

    - α, standardised α and the mean inter-item r as psych::alpha (listwise per scale).
    - ``ci="feldt"``: Feldt et al. (1987); ``ci="bootstrap"``: BCa with ``n_boot`` resamples and
      ``seed`` (vectorised; all scales with the same complete rows share the resamples).
    - ω_total from a one-factor ML model per scale (``omega=False`` skips it); CR and AVE from the
      standardised loadings of the measurement model (:func:`cfa`, listwise over all items;
      ``measurement_model=False`` skips it, e.g. for very large benchmarks).
    Reverse-keyed items are recoded first when ``reverse`` and ``scale_range`` are given.
    """
    scales = _check_scales(scales)
    if ci not in ("feldt", "bootstrap"):
        raise ValueError(f"ci must be 'feldt' or 'bootstrap', got {ci!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if ci == "bootstrap" and int(n_boot) < 100:
        raise ValueError(f"n_boot={n_boot}: BCa needs at least 100 resamples (2000 recommended)")
    data = _maybe_reverse(data, reverse, scale_range)

    rows, blocks = [], {}
    for name, items in scales.items():
        _check_columns(data, items, f"scale '{name}'")
        mask = _numeric(data, items, f"scale '{name}'").notna().all(axis=1).to_numpy()
        x = _complete(data, items, f"scale '{name}'")
        n, k = x.shape
        c = np.cov(x, rowvar=False)
        r = np.corrcoef(x, rowvar=False)
        a = cronbach_alpha(c)
        a_std, rbar = _std_alpha(r)
        row = {"scale": name, "n": n, "k": k, "alpha": a, "alpha_std": a_std, "alpha_ci_low": np.nan,
               "alpha_ci_high": np.nan, "omega_total": np.nan, "cr": np.nan, "ave": np.nan,
               "mean_inter_item_r": rbar, "omega_obs": np.nan, "ci_method": ci, "n_cfa": np.nan}
        if ci == "feldt":
            row["alpha_ci_low"], row["alpha_ci_high"] = feldt_ci(a, n, k, level)
        else:
            blocks.setdefault(mask.tobytes(), (mask, []))[1].append(name)
        if omega and k >= 3:
            row["omega_total"] = one_factor_omega(data, items)["omega_total"]
        rows.append(row)
    out = pd.DataFrame(rows)

    if ci == "bootstrap":
        rng = np.random.default_rng(seed)
        for mask, names in blocks.values():
            cols = [it for nm in names for it in scales[nm]]
            x = _numeric(data, cols, "bootstrap").to_numpy()[mask]
            slices, start = [], 0
            for nm in names:
                slices.append(slice(start, start + len(scales[nm])))
                start += len(scales[nm])
            lo, hi = _bootstrap_alpha(x, slices, int(n_boot), level, rng)
            for nm, low, high in zip(names, lo, hi):
                out.loc[out["scale"] == nm, ["alpha_ci_low", "alpha_ci_high"]] = [low, high]

    if measurement_model:
        try:
            model = cfa(data, scales)
        except ValueError:
            model = None
        if model is not None:
            v = model.validity.set_index("factor")
            out["cr"] = out["scale"].map(v["cr"])
            out["ave"] = out["scale"].map(v["ave"])
            out["omega_obs"] = out["scale"].map(v["omega_obs"])
            out["n_cfa"] = model.n
    return out


def judge_reliability(table: pd.DataFrame) -> pd.DataFrame:
    """Judge a :func:`scale_reliability` table: one row per scale and statistic with ok and reason."""
    rows = []
    for _, r in table.iterrows():
        for stat in ("alpha", "omega_total", "cr", "ave", "mean_inter_item_r"):
            if stat in r and pd.notna(r[stat]):
                ok, why = judge(stat, r[stat])
                rows.append({"scale": r["scale"], "statistic": stat, "value": r[stat], "ok": ok, "reason": why})
    return pd.DataFrame(rows, columns=["scale", "statistic", "value", "ok", "reason"])


def item_statistics(data: pd.DataFrame, scales: Scales, *, reverse: Sequence[str] | None = None,
                    scale_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """One row per item: scale, item, n, mean, sd, item_rest_r, alpha_if_deleted (+ ok, reason).

    On the scale's complete responses (listwise per scale), as psych::alpha: ``item_rest_r`` is
    the Pearson correlation of the item with the sum of the other items (``r.drop``);
    ``alpha_if_deleted`` is raw α of the other items (``alpha.drop$raw_alpha``); sd with n − 1.
    """
    scales = _check_scales(scales)
    data = _maybe_reverse(data, reverse, scale_range)
    rows = []
    for name, items in scales.items():
        x = _complete(data, items, f"scale '{name}'")
        n, k = x.shape
        c = np.cov(x, rowvar=False)
        a = cronbach_alpha(c)
        total = x.sum(axis=1)
        for i, it in enumerate(items):
            rest = total - x[:, i]
            r_rest = np.corrcoef(x[:, i], rest)[0, 1]
            keep = [j for j in range(k) if j != i]
            a_del = cronbach_alpha(c[np.ix_(keep, keep)]) if k > 2 else np.nan
            ok_r, why_r = judge("item_rest_r", r_rest)
            ok_a, why_a = judge("alpha_gain_if_deleted", a_del - a) if k > 2 else (None, "")
            ok = None if ok_r is None else (ok_r and ok_a is not False)
            reason = why_r if (ok_r is False or ok_a is not False) else why_a
            rows.append({"scale": name, "item": it, "n": n, "mean": x[:, i].mean(), "sd": x[:, i].std(ddof=1),
                         "item_rest_r": r_rest, "alpha_if_deleted": a_del, "ok": ok, "reason": reason})
    return pd.DataFrame(rows)


def kmo_bartlett(data: pd.DataFrame, items: Sequence[str]) -> dict:
    """Kaiser-Meyer-Olkin sampling adequacy and Bartlett's test of sphericity (listwise).

    KMO = Σ_{i≠j} r²_ij / (Σ_{i≠j} r²_ij + Σ_{i≠j} q²_ij), q the partial correlations from R⁻¹
    (Kaiser 1970; psych::KMO); MSA_i the same sums over column i. Bartlett (1950):
    χ² = −(n − 1 − (2p + 5)/6) · ln|R|, df = p(p − 1)/2 (psych::cortest.bartlett with n = rows).
    Returns {"n", "kmo", "msa" (Series by item), "chi2", "df", "p", "judgements" (DataFrame)}.
    """
    items = list(items)
    x = _complete(data, items, "kmo_bartlett", min_k=2)
    n, p = x.shape
    r = np.corrcoef(x, rowvar=False)
    try:
        inv = np.linalg.inv(r)
    except np.linalg.LinAlgError:
        raise ValueError("kmo_bartlett: the item correlation matrix is singular (an item is a linear "
                         "combination of others); drop the redundant item") from None
    d = np.sqrt(np.diag(inv))
    q = inv / np.outer(d, d)
    np.fill_diagonal(q, 0.0)
    r0 = r.copy()
    np.fill_diagonal(r0, 0.0)
    r2, q2 = (r0 ** 2), (q ** 2)
    kmo = r2.sum() / (r2.sum() + q2.sum())
    msa = pd.Series(r2.sum(axis=0) / (r2.sum(axis=0) + q2.sum(axis=0)), index=items, name="msa")
    chi2 = -np.log(np.linalg.det(r)) * (n - 1 - (2 * p + 5) / 6)
    df = p * (p - 1) / 2
    pval = stats.chi2.sf(chi2, df)
    js = [{"what": "all items", "statistic": "kmo", "value": kmo, **dict(zip(("ok", "reason"), judge("kmo", kmo)))},
          {"what": "all items", "statistic": "bartlett_p", "value": pval, **dict(zip(("ok", "reason"), judge("bartlett_p", pval)))}]
    for it, v in msa.items():
        ok, why = judge("msa", v)
        if not ok:
            js.append({"what": it, "statistic": "msa", "value": v, "ok": ok, "reason": why})
    return {"n": n, "kmo": float(kmo), "msa": msa, "chi2": float(chi2), "df": float(df), "p": float(pval),
            "judgements": pd.DataFrame(js)}


def measurement_report(data: pd.DataFrame, study, ci: str = "feldt", level: float = 0.95, n_boot: int = 2000,
                       seed: int | None = None) -> dict:
    """Everything above for a study's questionnaire, reverse-keyed items recoded from study.yml.

    Returns {"scales": scale_reliability table, "items": item_statistics, "kmo": kmo_bartlett over
    all items, "cfa": CFAResult, "judgements": one DataFrame (what, statistic, value, ok, reason)}.
    """
    lo, hi = study.questionnaire.scale.min, study.questionnaire.scale.max
    data = recode_reverse(data, [r for r in study.reverse_items if r in data.columns], lo, hi)
    scales = study.scales
    tab = scale_reliability(data, scales, ci=ci, level=level, n_boot=n_boot, seed=seed, measurement_model=False)
    why = cfa_unidentified(data, scales)
    model = None
    if why is None:
        try:
            model = cfa(data, scales)
        except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. a singular covariance of the items
            why = f"the model could not be fitted ({exc})"
    if model is not None:
        v = model.validity.set_index("factor")
        tab["cr"], tab["ave"], tab["omega_obs"], tab["n_cfa"] = (tab["scale"].map(v["cr"]), tab["scale"].map(v["ave"]),
                                                                 tab["scale"].map(v["omega_obs"]), model.n)
    else:
        tab["cr"] = tab["ave"] = tab["omega_obs"] = np.nan
        tab["n_cfa"] = 0
    items = item_statistics(data, scales)
    n_complete = int(data[study.item_ids].dropna().shape[0])
    kmo = kmo_bartlett(data, study.item_ids) if n_complete > len(study.item_ids) + 1 else None
    js = [judge_reliability(tab).rename(columns={"scale": "what"})]
    bad_items = items[items["ok"] == False]  # noqa: E712
    if len(bad_items):
        js.append(pd.DataFrame({"what": bad_items["scale"] + "/" + bad_items["item"], "statistic": "item",
                                "value": bad_items["item_rest_r"], "ok": False, "reason": bad_items["reason"]}))
    if kmo is not None:
        js.append(kmo["judgements"])
    if model is not None:
        js.append(model.judgements[model.judgements["statistic"] != "cr"].loc[lambda d: d["statistic"] != "ave"])
    return {"scales": tab, "items": items, "kmo": kmo, "cfa": model, "cfa_skipped": why,
            "judgements": pd.concat(js, ignore_index=True)[["what", "statistic", "value", "ok", "reason"]]}


def cfa_unidentified(data: pd.DataFrame, scales: dict) -> str | None:
    """Why a correlated-factors CFA of ``scales`` cannot be estimated on ``data`` (None when it can).

    Degrees of freedom p(p+1)/2 − 2p − k(k−1)/2 (p items, k factors with unit variances) must be
    positive for the model to be over-identified and its fit testable; a single factor needs at
    least three items (four for a testable fit), and the item covariance matrix needs more complete
    rows than items to be positive definite.
    """
    items = [i for v in scales.values() for i in v]
    p, k = len(items), len(scales)
    df = p * (p + 1) // 2 - 2 * p - k * (k - 1) // 2
    if df <= 0:
        return ((NP_("reason", "{} items in {} factor leave {} degrees of freedom; a confirmatory factor analysis needs a "
                     "positive number (e.g. at least 4 items for one factor)") if k == 1 else
                 NP_("reason", "{} items in {} factors leave {} degrees of freedom; a confirmatory factor analysis needs a "
                     "positive number (e.g. at least 4 items for one factor)")).format(p, k, df))
    n = int(data[items].dropna().shape[0])
    if n <= p + 1:
        return NP_("reason", "{} complete questionnaires for {} items; the factor analysis needs more complete rows than "
                   "items").format(n, p)
    return None
