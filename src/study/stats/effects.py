"""Before/after evaluation of improvement measures.

* :func:`compare` — one before/after comparison (continuous, binary or NPS), with the headline
  test chosen by a documented rule (:data:`RULES`), effect sizes with CIs and a second,
  rank-based test reported beside it. The tests are scipy.stats (``ttest_ind``, ``ttest_rel``,
  ``mannwhitneyu``, ``wilcoxon``, ``chi2_contingency``) used with R's conventions (``t.test``,
  ``wilcox.test``, ``prop.test``: W, V = R+, the exact/normal choice, the Yates interval) so
  they can be checked against R.
* :func:`adjust_p` — Holm and Benjamini–Hochberg adjustment (vectorised; the same numbers as
  statsmodels ``multipletests`` and R ``p.adjust``).
* :func:`power_mde` — power achieved and minimum detectable effect at 80 % power.
* :func:`did` — difference-in-differences with branch-clustered (CR1) standard errors, a
  restricted wild-cluster bootstrap p-value (Rademacher or Webb weights) when there are fewer
  than 30 clusters, and a pre-trend test when there is more than one pre period.
* :func:`target_attainment` — each target of study.yml: met / not met / not distinguishable.
* :func:`evaluate` — every metric of every measure: pilot and control before/after and DiD, in
  one table with Holm and BH adjusted p-values, power and MDE.

References
----------
R Core Team, ``stats::t.test``, ``stats::wilcox.test``, ``stats::prop.test`` (source conventions).
Hedges, L. V. & Olkin, I. (1985). Statistical Methods for Meta-Analysis (g, J correction).
Steiger, J. H. & Fouladi, R. T. (1997). Noncentrality interval estimation (CI of d via the
  noncentral t), as in ``effectsize::hedges_g`` (Ben-Shachar, Lüdecke & Makowski 2020).
Kerby, D. S. (2014). The simple difference formula: rank-biserial correlation.
Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences (h, power).
Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for
  inference with clustered errors. Rev. Econ. Stat. 90(3) (wild cluster bootstrap, restricted).
Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered errors. Can. J. Econ.
Holm, S. (1979); Benjamini, Y. & Hochberg, Y. (1995).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from study.i18n import N_, NP_

__all__ = ["RULES", "compare", "adjust_p", "power_mde", "did", "metric_values", "metric_kind",
           "target_attainment", "evaluate", "measure_window", "WINDOW_STATUSES"]

# The documented rules choosing the headline test when ``test`` is not given. The chosen rule's
# id and text are returned in the ``rule`` field of :func:`compare`.
RULES = {
    "C1": N_("continuous, independent groups, both n >= 30: Welch t (robust to unequal variances; the mean is "
          "approximately normal by the central limit theorem even when the data are skewed)"),
    "C2": N_("continuous, independent groups, a group with n < 30 and skew |g1| > 1 or more than 5 % outliers "
          "(beyond 3 IQR from the quartiles): Mann-Whitney U"),
    "C3": N_("continuous, independent groups, a group with n < 30 and no marked skew or outliers: Welch t"),
    "P1": N_("continuous, paired, n >= 30 pairs: paired t"),
    "P2": N_("continuous, paired, n < 30 pairs with skewed (|g1| > 1) or outlying differences: Wilcoxon signed-rank"),
    "P3": N_("continuous, paired, n < 30 pairs, differences without marked skew or outliers: paired t"),
    "B1": N_("binary: two-proportion test with continuity correction (R prop.test)"),
    "N1": N_("NPS: difference of two NPS, z test with the standard error of the difference"),
    "F": N_("test forced by the caller"),
}

_TESTS = ("welch", "student", "mann_whitney", "paired_t", "wilcoxon", "two_proportion", "nps")
FIELDS = ["test", "rule", "statistic", "df", "p", "estimate", "ci_low", "ci_high", "effect_size", "effect_size_name",
          "effect_ci_low", "effect_ci_high", "n_before", "n_after", "before_value", "after_value",
          "alt_test", "alt_statistic", "alt_p", "alt_effect_size", "alt_effect_size_name", "alt_effect_ci_low",
          "alt_effect_ci_high", "assumption_notes"]


# ---------------------------------------------------------------------------------------------
# helpers
def _clean(x, name: str) -> np.ndarray:
    if isinstance(x, pd.DataFrame):
        raise TypeError(f"{name}: give one column (a Series or array), not a DataFrame")
    s = pd.Series(x)
    if s.dtype == bool:
        s = s.astype(float)
    if not pd.api.types.is_numeric_dtype(s):
        s = pd.to_numeric(s, errors="coerce")
        if s.isna().all():
            raise ValueError(f"{name}: values are not numeric")
    return s.to_numpy(dtype=float)


def _skew_outliers(x: np.ndarray) -> tuple[float, float]:
    if len(x) < 3 or np.std(x) == 0:
        return 0.0, 0.0
    g1 = float(stats.skew(x, bias=True))
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    out = float(np.mean((x < q1 - 3 * iqr) | (x > q3 + 3 * iqr))) if iqr > 0 else 0.0
    return g1, out


def _has_ties(v: np.ndarray) -> bool:
    return len(np.unique(v)) < len(v)


# --- tests: scipy.stats, with R's conventions on top ---------------------------------------------
def _t_two(a: np.ndarray, b: np.ndarray, equal_var: bool, level: float) -> dict:
    """t.test(after, before, var.equal=...) via ``scipy.stats.ttest_ind``: estimate mean(a) − mean(b).
    No variance in either group: t, p (and Welch's df and CI) are NaN, where R stops."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=equal_var)
        ci = res.confidence_interval(level)
    out = {"test": "welch" if not equal_var else "student", "statistic": float(res.statistic), "df": float(res.df),
           "p": float(res.pvalue), "estimate": a.mean() - b.mean(), "ci_low": float(ci.low), "ci_high": float(ci.high)}
    if not (a.var(ddof=1) > 0 or b.var(ddof=1) > 0):
        out.update(statistic=np.nan, p=np.nan)
        if not equal_var:
            out.update(df=np.nan, ci_low=np.nan, ci_high=np.nan)
    return out


def _t_paired(a: np.ndarray, b: np.ndarray, level: float) -> dict:
    """t.test(after, before, paired=TRUE) via ``scipy.stats.ttest_rel``; constant differences: t, p NaN."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
        ci = res.confidence_interval(level)
    d = a - b
    out = {"test": "paired_t", "statistic": float(res.statistic), "df": int(res.df), "p": float(res.pvalue),
           "estimate": d.mean(), "ci_low": float(ci.low), "ci_high": float(ci.high)}
    if not d.std(ddof=1) > 0:
        out.update(statistic=np.nan, p=np.nan)
    return out


def _mann_whitney(a: np.ndarray, b: np.ndarray, exact: bool | None = None) -> dict:
    """wilcox.test(after, before) via ``scipy.stats.mannwhitneyu``: W = U of `after`.

    As R chooses: exact when both n < 50 and there are no ties; otherwise the normal approximation
    with tie-corrected variance and continuity correction. All values tied: p = 1 (R: NA).
    """
    na, nb = len(a), len(b)
    pooled = np.concatenate([a, b])
    if exact is None:
        exact = na < 50 and nb < 50
    exact = exact and not _has_ties(pooled)
    res = stats.mannwhitneyu(a, b, alternative="two-sided", use_continuity=True,
                             method="exact" if exact else "asymptotic")
    method = "exact" if exact else "normal approximation with continuity and tie correction"
    return {"statistic": float(res.statistic), "p": float(res.pvalue), "method": method}


def _signed_rank(d: np.ndarray, exact: bool | None = None) -> dict:
    """wilcox.test(after, before, paired=TRUE) via ``scipy.stats.wilcoxon`` (zeros dropped, as R):
    V = sum of ranks of the positive differences; exact when n < 50 and no ties or zeros."""
    zeros = bool((d == 0).any())
    nz = d[d != 0]
    n = len(nz)
    if n == 0:
        return {"statistic": 0.0, "p": 1.0, "method": "all differences are zero"}
    r = stats.rankdata(np.abs(nz))
    V = float(r[nz > 0].sum())
    if exact is None:
        exact = n < 50
    exact = exact and not zeros and not _has_ties(np.abs(nz))
    res = stats.wilcoxon(nz, zero_method="wilcox", correction=True, alternative="two-sided",
                         method="exact" if exact else "asymptotic")
    method = "exact" if exact else "normal approximation with continuity and tie correction"
    return {"statistic": V, "p": float(res.pvalue), "method": method}


def _ncp_ci(t: float, df: float, level: float) -> tuple[float, float]:
    """Noncentrality parameters whose t distributions put t at the (1±level)/2 quantiles
    (the noncentral-t CI of Steiger & Fouladi 1997, solved by bracketing and Brent's method).
    NaN limits when t is not finite (zero variance) or df < 1 (too few observations)."""
    if not (np.isfinite(t) and np.isfinite(df) and df >= 1):
        return np.nan, np.nan

    def cdf(ncp):
        v = stats.nct.cdf(t, df, ncp)
        if not np.isfinite(v):              # numerical failure far in a tail
            v = 0.0 if ncp > t else 1.0
        return v

    def root(target):
        f = lambda ncp: cdf(ncp) - target    # noqa: E731 - decreasing in ncp
        lo, hi, step = t - 1.0, t + 1.0, 1.0
        while f(lo) < 0:
            step *= 2
            lo = t - step
        step = 1.0
        while f(hi) > 0:
            step *= 2
            hi = t + step
        return optimize.brentq(f, lo, hi, xtol=1e-12)
    return root(0.5 + level / 2), root(0.5 - level / 2)


def hedges_g(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g of a − b with pooled SD and its noncentral-t CI (as ``effectsize::hedges_g``).

    d = (m_a − m_b)/s_p; CI: ncp limits of t = d/√(1/n_a + 1/n_b) with df = n_a + n_b − 2, times
    √(1/n_a + 1/n_b); g and both limits are multiplied by J = Γ(df/2)/(√(df/2) Γ((df−1)/2)).
    """
    if len(a) + len(b) - 2 < 1:              # one value per group: g is undefined
        return np.nan, np.nan, np.nan
    return hedges_g_from_stats(a.mean() - b.mean(), a.var(ddof=1), len(a), b.var(ddof=1), len(b), level)


def welch_from_stats(mean_a: float, var_a: float, na: int, mean_b: float, var_b: float, nb: int,
                     level: float = 0.95) -> dict:
    """Welch's t of a − b from the groups' summaries (R ``t.test`` on the data; scipy's ``ttest_ind_from_stats`` gives
    no df or interval): the fields of :func:`_t_two`. Used where the samples are summaries or counts per value."""
    va, vb = var_a / na, var_b / nb
    se = math.sqrt(va + vb)
    est = mean_a - mean_b
    df = (va + vb) ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    t = est / se
    q = stats.t.ppf(0.5 + level / 2, df)
    return {"test": "welch", "statistic": t, "df": df, "p": float(2 * stats.t.sf(abs(t), df)), "estimate": est,
            "ci_low": est - q * se, "ci_high": est + q * se}


def hedges_g_from_stats(diff: float, var_a: float, na: int, var_b: float, nb: int,
                        level: float = 0.95) -> tuple[float, float, float]:
    """:func:`hedges_g` from the groups' summaries: ``diff`` = mean_a − mean_b, sample variances and sizes (also used
    by :func:`study.stats.requests.compare_counts`, whose samples are counts per value)."""
    df = na + nb - 2
    if not df >= 1:
        return np.nan, np.nan, np.nan
    sp = math.sqrt(((na - 1) * var_a + (nb - 1) * var_b) / df)
    hn = 1 / na + 1 / nb
    if not sp > 0:                           # no variance: g is undefined
        return np.nan, np.nan, np.nan
    d = diff / sp
    J = math.exp(math.lgamma(df / 2) - math.log(math.sqrt(df / 2)) - math.lgamma((df - 1) / 2))
    lo, hi = _ncp_ci(d / math.sqrt(hn), df, level)
    return d * J, lo * math.sqrt(hn) * J, hi * math.sqrt(hn) * J


def cohens_dz(d: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """d_z = mean(diff)/sd(diff) with its noncentral-t CI (``effectsize::cohens_d(paired=TRUE)``)."""
    n = len(d)
    if n < 2 or not d.std(ddof=1) > 0:       # constant differences: d_z is undefined
        return np.nan, np.nan, np.nan
    dz = d.mean() / d.std(ddof=1)
    lo, hi = _ncp_ci(dz * math.sqrt(n), n - 1, level)
    return dz, lo / math.sqrt(n), hi / math.sqrt(n)


def rank_biserial(a: np.ndarray, b: np.ndarray | None = None, level: float = 0.95) -> tuple[float, float, float]:
    """Rank-biserial correlation (Kerby 2014) and its CI, as ``effectsize::rank_biserial``.

    Independent: r = 2U_a/(n_a n_b) − 1, SE(atanh r) = √((n_a+n_b+1)/(3 n_a n_b)).
    Paired (b None, a = differences): r = (R+ − R−)/(n(n+1)/2), SE = √((2n³+3n²+n)/6)/(n(n+1)/2),
    n = non-zero differences. CI = tanh(atanh r ± z·SE).
    """
    if b is None:
        d = a[a != 0]
        n = len(d)
        if n == 0:                            # every difference is zero: r is undefined
            return np.nan, np.nan, np.nan
        r_ = stats.rankdata(np.abs(d))
        S = n * (n + 1) / 2
        r = (r_[d > 0].sum() - r_[d < 0].sum()) / S
        return _atanh_ci(r, math.sqrt((2 * n ** 3 + 3 * n ** 2 + n) / 6) / S, level)
    na, nb = len(a), len(b)
    rk = stats.rankdata(np.concatenate([a, b]))
    U1 = rk[:na].sum() - na * (na + 1) / 2
    U2 = rk[na:].sum() - nb * (nb + 1) / 2
    return rank_biserial_ci((U1 - U2) / (na * nb), na, nb, level)


def rank_biserial_ci(r: float, na: int, nb: int, level: float = 0.95) -> tuple[float, float, float]:
    """The independent-groups rank-biserial ``r`` with its CI, SE(atanh r) = √((n_a+n_b+1)/(3 n_a n_b))
    (:func:`rank_biserial`; also :func:`study.stats.requests.compare_counts`, which has r from U)."""
    return _atanh_ci(r, math.sqrt((na + nb + 1) / (3 * na * nb)), level)


def _atanh_ci(r: float, se: float, level: float) -> tuple[float, float, float]:
    """r with tanh(atanh r ± z·se) (r clipped just inside ±1 so that the transform stays finite)."""
    z = stats.norm.ppf(0.5 + level / 2)
    rc = np.clip(r, -1 + 1e-15, 1 - 1e-15)
    return float(r), float(np.tanh(np.arctanh(rc) - z * se)), float(np.tanh(np.arctanh(rc) + z * se))


def _prop_test(xa: float, na: int, xb: float, nb: int, level: float) -> dict:
    """prop.test(c(x_after, x_before), c(n_after, n_before)): the χ² with Yates' correction from
    ``scipy.stats.chi2_contingency`` (the same |O − E| − min(½, |O − E|) as R), R's Yates interval
    for the difference. All successes or all failures in both groups: χ² = 0, p = 1."""
    pa, pb = xa / na, xb / nb
    n = np.array([na, nb], float)
    delta = pa - pb
    yates = min(0.5, abs(delta) / (1 / n).sum())
    z = stats.norm.ppf(0.5 + level / 2)
    width = z * math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb) + yates * (1 / n).sum()
    if 0 < xa + xb < na + nb:
        res = stats.chi2_contingency([[xa, na - xa], [xb, nb - xb]], correction=True)
        chi2, p = float(res.statistic), float(res.pvalue)
    else:
        chi2, p = 0.0, 1.0
    return {"test": "two_proportion", "statistic": chi2, "df": 1, "p": p,
            "estimate": delta, "ci_low": max(delta - width, -1.0), "ci_high": min(delta + width, 1.0)}


def cohens_h(pa: float, pb: float, na: int, nb: int, level: float = 0.95) -> tuple[float, float, float]:
    """h = 2 asin √p_a − 2 asin √p_b; CI h ± z √(1/n_a + 1/n_b) (``effectsize::cohens_h``)."""
    h = 2 * math.asin(math.sqrt(pa)) - 2 * math.asin(math.sqrt(pb))
    z = stats.norm.ppf(0.5 + level / 2)
    se = math.sqrt(1 / na + 1 / nb)
    return h, h - z * se, h + z * se


def nps_value(scores: np.ndarray, low: float = 0, high: float = 10) -> tuple[float, float]:
    """NPS = 100 (share of 9-10 − share of 0-6) on a 0-10 scale, and its standard error
    SE = 100 √((p_P + p_D − (p_P − p_D)²)/n) (the SD of the per-respondent score ±100/0)."""
    s = scores[~np.isnan(scores)]
    if len(s) and (s.min() < low or s.max() > high):
        raise ValueError(f"NPS scores must lie in {low}..{high}; found {s.min()}..{s.max()}")
    n = len(s)
    pp = np.mean(s >= 9)
    pd_ = np.mean(s <= 6)
    return 100 * (pp - pd_), 100 * math.sqrt(max(pp + pd_ - (pp - pd_) ** 2, 0) / n)


# ---------------------------------------------------------------------------------------------
def _alt_fields(alt: dict) -> dict:
    """The test reported beside the headline one, as the ``alt_*`` fields of :func:`compare`."""
    keys = ("test", "statistic", "p", "effect_size", "effect_size_name", "effect_ci_low", "effect_ci_high")
    return {f"alt_{k}": alt[k] for k in keys}


def compare(before, after, kind: str = "continuous", paired: bool = False, test: str | None = None,
            level: float = 0.95) -> pd.Series:
    """Compare a metric before and after a change; ``estimate`` is after − before.

    kind="continuous": Welch t (default), Student t or Mann–Whitney U; Hedges' g with its
    noncentral-t CI is the effect size of the t tests; the Mann–Whitney U with rank-biserial
    correlation is reported beside (``alt_*`` fields) or is the headline when the rule says so.
    paired=True: paired t with d_z, Wilcoxon signed-rank with rank-biserial beside.
    kind="binary" (0/1): prop.test with continuity correction, risk difference with R's CI,
    Cohen's h. kind="nps" (0-10 scores): difference of the two NPS with SE √(SE_a² + SE_b²),
    z test, normal CI.
    The headline test is chosen by :data:`RULES` unless ``test`` forces one; the rule that fired is
    in ``rule``. p-values follow R: t.test, wilcox.test (exact when n < 50 and no ties, else
    normal with continuity and tie correction), prop.test.
    """
    if kind not in ("continuous", "binary", "nps"):
        raise ValueError("kind must be 'continuous', 'binary' or 'nps'")
    if test is not None and test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS} or None")
    a = _clean(after, "after")
    b = _clean(before, "before")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired comparison needs equal lengths; before has {len(b)}, after {len(a)}")
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
    else:
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if min(len(a), len(b)) < 2:
        raise ValueError(f"compare: need at least 2 values in each group (before {len(b)}, after {len(a)})")
    out = dict.fromkeys(FIELDS, np.nan)
    out.update(n_before=len(b), n_after=len(a), effect_size_name="", alt_test="", alt_effect_size_name="")
    notes: list[str] = []
    z = stats.norm.ppf(0.5 + level / 2)

    if kind == "binary":
        for name, v in (("before", b), ("after", a)):
            if not np.isin(v, (0, 1)).all():
                raise ValueError(f"binary comparison: '{name}' must contain only 0/1 (or True/False)")
        if paired:
            raise ValueError("paired binary data: use a McNemar test; compare() handles independent proportions")
        if test not in (None, "two_proportion"):
            raise ValueError(f"test '{test}' does not apply to binary data; use 'two_proportion'")
        res = _prop_test(a.sum(), len(a), b.sum(), len(b), level)
        h, hl, hh = cohens_h(a.mean(), b.mean(), len(a), len(b), level)
        out.update(res, rule="F" if test else "B1", effect_size=h, effect_size_name="Cohen's h", effect_ci_low=hl,
                   effect_ci_high=hh, before_value=b.mean(), after_value=a.mean())
        if min(a.sum(), len(a) - a.sum(), b.sum(), len(b) - b.sum()) < 5:
            notes.append("an expected cell count is small; the chi-square approximation may be inaccurate")
    elif kind == "nps":
        if paired:
            raise ValueError("paired NPS comparison is not supported; compare independent samples")
        if test not in (None, "nps"):
            raise ValueError(f"test '{test}' does not apply to NPS; use 'nps'")
        va, sa = nps_value(a)
        vb, sb = nps_value(b)
        est = va - vb
        se = math.sqrt(sa ** 2 + sb ** 2)
        zs = est / se if se > 0 else np.nan
        out.update(test="nps", rule="F" if test else "N1", statistic=zs, df=np.nan,
                   p=float(2 * stats.norm.sf(abs(zs))), estimate=est, ci_low=est - z * se, ci_high=est + z * se,
                   effect_size=np.nan, effect_size_name="", before_value=vb, after_value=va)
        out["se"] = se
    elif paired:
        d = a - b
        g1, outl = _skew_outliers(d)
        if test is not None:
            rule = "F"
        elif len(d) >= 30:
            rule = "P1"
        else:
            rule = "P2" if (abs(g1) > 1 or outl > 0.05) else "P3"
        choice = test or ("wilcoxon" if rule == "P2" else "paired_t")
        if choice not in ("paired_t", "wilcoxon"):
            raise ValueError(f"test '{choice}' does not apply to paired data; use 'paired_t' or 'wilcoxon'")
        tt = _t_paired(a, b, level)
        dz, dl, dh = cohens_dz(d, level)
        sr = _signed_rank(d)
        rb, rl, rh = rank_biserial(d, None, level)
        tblock = {**tt, "effect_size": dz, "effect_size_name": "d_z", "effect_ci_low": dl, "effect_ci_high": dh}
        wblock = {"test": "wilcoxon", "statistic": sr["statistic"], "df": np.nan, "p": sr["p"],
                  "effect_size": rb, "effect_size_name": "rank-biserial r", "effect_ci_low": rl, "effect_ci_high": rh}
        head, alt = (tblock, wblock) if choice == "paired_t" else (wblock, tblock)
        out.update(head, rule=rule, before_value=b.mean(), after_value=a.mean())
        if choice == "wilcoxon":
            out.update(estimate=float(np.median(d)), ci_low=np.nan, ci_high=np.nan)
            notes.append("estimate is the median of the paired differences")
        out.update(_alt_fields(alt))
        notes.append(f"differences: skew {g1:.2f}, outliers {outl:.1%}; Wilcoxon: {sr['method']}")
    else:
        ga, oa = _skew_outliers(a)
        gb, ob = _skew_outliers(b)
        small = min(len(a), len(b)) < 30
        rough = max(abs(ga), abs(gb)) > 1 or max(oa, ob) > 0.05
        if test is not None:
            rule = "F"
        elif not small:
            rule = "C1"
        else:
            rule = "C2" if rough else "C3"
        choice = test or ("mann_whitney" if rule == "C2" else "welch")
        if choice not in ("welch", "student", "mann_whitney"):
            raise ValueError(f"test '{choice}' does not apply to independent continuous data; use 'welch', 'student' or 'mann_whitney'")
        tt = _t_two(a, b, equal_var=(choice == "student"), level=level)
        g, gl, gh = hedges_g(a, b, level)
        mw = _mann_whitney(a, b)
        rb, rl, rh = rank_biserial(a, b, level)
        tblock = {**tt, "effect_size": g, "effect_size_name": "Hedges' g", "effect_ci_low": gl, "effect_ci_high": gh}
        wblock = {"test": "mann_whitney", "statistic": mw["statistic"], "df": np.nan, "p": mw["p"],
                  "effect_size": rb, "effect_size_name": "rank-biserial r", "effect_ci_low": rl, "effect_ci_high": rh}
        head, alt = (wblock, tblock) if choice == "mann_whitney" else (tblock, wblock)
        out.update(head, rule=rule, before_value=b.mean(), after_value=a.mean())
        if choice == "mann_whitney":
            out.update(estimate=float(np.median(a) - np.median(b)), ci_low=np.nan, ci_high=np.nan)
            notes.append("estimate is the difference of the medians")
        out.update(_alt_fields(alt))
        notes.append(f"skew before {gb:.2f} / after {ga:.2f}; outliers before {ob:.1%} / after {oa:.1%}; "
                     f"SD ratio {a.std(ddof=1) / b.std(ddof=1) if b.std(ddof=1) > 0 else np.nan:.2f}; Mann-Whitney: {mw['method']}")
    if kind == "continuous" and (np.ptp(a) == 0 or np.ptp(b) == 0) and not np.isfinite(out["effect_size"]):
        notes.append("a group (or the differences) has no variance: the t statistic and the effect size are undefined")
    notes.insert(0, f"rule {out['rule']}: {RULES[out['rule']]}")
    out["assumption_notes"] = "; ".join(notes)
    return pd.Series(out)


# ---------------------------------------------------------------------------------------------
def adjust_p(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values: method "holm" (Holm 1979) or "bh" / "fdr_bh" (Benjamini–Hochberg 1995); NaN
    entries are left out and kept NaN.

    Holm: sorted ascending, ``min(1, max_{j≤i} (m − j + 1) p_(j))``; BH: sorted ascending,
    ``min(1, min_{j≥i} m p_(j) / j)``. The same numbers as R ``p.adjust`` and statsmodels
    ``multipletests`` (tests/test_effects.py); written out because ``multipletests`` runs a full
    ``gc.collect()`` on every call (0.36 s each in a report that adjusts dozens of families)."""
    m = {"holm": "holm", "bh": "bh", "fdr_bh": "bh", "BH": "bh"}.get(method)
    if m is None:
        raise ValueError("method must be 'holm' or 'bh'")
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = holm(p[ok]) if m == "holm" else bh(p[ok])
    return out


def holm(p) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values of a vector without NaN (see :func:`adjust_p`)."""
    p = np.asarray(p, float)
    k = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((k - np.arange(k)) * p[order]))
    out = np.empty(k)
    out[order] = adj
    return out


def bh(p) -> np.ndarray:
    """Benjamini–Hochberg (1995) step-up adjusted p-values of a vector without NaN (see :func:`adjust_p`)."""
    p = np.asarray(p, float)
    k = len(p)
    order = np.argsort(p, kind="stable")[::-1]          # largest first
    adj = np.minimum(1.0, np.minimum.accumulate(k / np.arange(k, 0, -1) * p[order]))
    out = np.empty(k)
    out[order] = adj
    return out


def _scalar(x) -> float:
    """One float from a statsmodels result: a scalar, a 0-d or a 1-element array (solve_power returns
    ``array([d])`` for some group sizes); anything else, or a failure, is NaN."""
    try:
        a = np.asarray(x, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        return np.nan
    return float(a[0]) if a.size == 1 else np.nan


def _solve(fn, **kw) -> float:
    """A statsmodels ``power``/``solve_power`` call as one float; NaN when the root finder fails
    (e.g. no effect size reaches the power with 1 or 2 observations per group)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return _scalar(fn(**kw))
    except (ValueError, ZeroDivisionError, FloatingPointError, RuntimeError):
        return np.nan


def power_mde(row: pd.Series, alpha: float = 0.05, power: float = 0.8) -> tuple[float, float]:
    """Power achieved at the observed effect and the minimum detectable effect (MDE) at ``power``,
    in the units of ``estimate`` (statsmodels power classes; two-sided).

    t tests: TTestIndPower with Hedges' g (ratio n_after/n_before), MDE = d_min · pooled SD;
    paired: TTestPower with d_z; binary: NormalIndPower with Cohen's h, MDE converted back to a
    difference of proportions from the before value; NPS / DiD: normal (t) approximation with
    the standard error, MDE = (z_{1−α/2} + z_power) · SE.

    Never raises for a group size: with fewer than 2 observations in a group, a zero variance
    (effect size undefined), or when no effect size reaches ``power`` (tiny groups), the value
    that cannot be computed is NaN.
    """
    from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower

    test = row["test"]
    nb, na = float(row["n_before"]), float(row["n_after"])
    if not (np.isfinite(nb) and np.isfinite(na)) or min(nb, na) < 2:
        return np.nan, np.nan

    def finite(x) -> bool:
        return x is not None and np.isfinite(_scalar(x))

    if test in ("welch", "student", "mann_whitney"):
        g = _scalar(row["effect_size"] if row["effect_size_name"] == "Hedges' g" else row["alt_effect_size"])
        ratio = na / nb
        pw = _solve(TTestIndPower().power, effect_size=abs(g), nobs1=nb, alpha=alpha, ratio=ratio) if finite(g) else np.nan
        if finite(g) and not np.isfinite(pw):   # statsmodels' noncentral t gives NaN far in the tail (large n): normal limit
            pw = _solve(NormalIndPower().power, effect_size=abs(g), nobs1=nb, alpha=alpha, ratio=ratio)
        dmin = _solve(TTestIndPower().solve_power, effect_size=None, nobs1=nb, alpha=alpha, power=power, ratio=ratio)
        est_t = row["estimate"] if test != "mann_whitney" else row["after_value"] - row["before_value"]
        sd = abs(est_t / g) if finite(g) and g != 0 and finite(est_t) else np.nan
        return pw, dmin * sd
    if test in ("paired_t", "wilcoxon"):
        dz = _scalar(row["effect_size"] if row["effect_size_name"] == "d_z" else row["alt_effect_size"])
        pw = _solve(TTestPower().power, effect_size=abs(dz), nobs=na, alpha=alpha) if finite(dz) else np.nan
        if finite(dz) and not np.isfinite(pw):
            pw = _solve(NormalIndPower().power, effect_size=abs(dz), nobs1=na, alpha=alpha, ratio=0)   # one-sample z
        dmin = _solve(TTestPower().solve_power, effect_size=None, nobs=na, alpha=alpha, power=power)
        diff = row["after_value"] - row["before_value"]
        sd = abs(diff / dz) if finite(dz) and dz != 0 and finite(diff) else np.nan
        return pw, dmin * sd
    if test == "two_proportion":
        h = _scalar(row["effect_size"])
        ratio = na / nb
        pw = _solve(NormalIndPower().power, effect_size=abs(h), nobs1=nb, alpha=alpha, ratio=ratio) if finite(h) else np.nan
        hmin = _solve(NormalIndPower().solve_power, effect_size=None, nobs1=nb, alpha=alpha, power=power, ratio=ratio)
        p0 = _scalar(row["before_value"])
        if not (finite(hmin) and finite(p0) and 0 <= p0 <= 1):
            return pw, np.nan
        phi = 2 * math.asin(math.sqrt(p0))
        up = math.sin(min(phi + hmin, math.pi) / 2) ** 2 - p0
        down = p0 - math.sin(max(phi - hmin, 0) / 2) ** 2
        est = _scalar(row["estimate"])
        direction = np.sign(est) if finite(est) and est != 0 else 1
        mde = up if direction >= 0 else down
        if mde <= 0:                         # at 0 or 1 the change can only go the other way
            mde = down if direction >= 0 else up
        return pw, float(mde)
    se = _scalar(row.get("se", np.nan))
    if not np.isfinite(se):
        se = (_scalar(row["ci_high"]) - _scalar(row["ci_low"])) / (2 * stats.norm.ppf(1 - alpha / 2))
    if not (np.isfinite(se) and se > 0):
        return np.nan, np.nan
    df = _scalar(row.get("df", np.nan))
    dist = stats.t(df) if np.isfinite(df) and df > 0 else stats.norm
    crit = dist.ppf(1 - alpha / 2)
    ncp = abs(_scalar(row["estimate"])) / se
    pw = dist.sf(crit - ncp) + dist.cdf(-crit - ncp)
    return float(pw), float((crit + dist.ppf(power)) * se)


# ---------------------------------------------------------------------------------------------
# difference-in-differences
def _ols_cr1(y: np.ndarray, X: np.ndarray, groups: np.ndarray):
    """OLS with CR1 cluster-robust covariance, G/(G−1)·(N−1)/(N−K), and t(G − 1) inference
    (statsmodels; the same as Stata and ``sandwich::vcovCL(type = "HC1")``)."""
    from statsmodels.regression.linear_model import OLS

    return OLS(y, X).fit(cov_type="cluster", use_t=True,
                         cov_kwds={"groups": groups, "use_correction": True, "df_correction": True})


def _design(df: pd.DataFrame, periods: list, with_treat_post: bool = True, pre_interactions: list | None = None):
    cols = {"const": np.ones(len(df)), "treated": df["_treated"].to_numpy(float)}
    for p in periods[1:]:
        cols[f"period[{p}]"] = (df["_period"] == p).to_numpy(float)
    for p in (pre_interactions or []):
        cols[f"treated×period[{p}]"] = ((df["_period"] == p) & df["_treated"]).to_numpy(float)
    if with_treat_post:
        cols["treated×post"] = (df["_treated"] & df["_post"]).to_numpy(float)
    return pd.DataFrame(cols)


def did(data: pd.DataFrame, outcome: str, unit: str = "branch_id", group: str = "group", period: str = "period",
        post=None, treated="pilot", n_boot: int = 9999, weights: str = "auto", seed=None, level: float = 0.95,
        boot_threshold: int = 30) -> pd.Series:
    """Difference-in-differences of ``outcome`` between treated and control units.

    Model (OLS on the observations): y = α + β·treated + Σ_t γ_t·period_t + δ·treated×post + ε,
    period fixed effects absorb the common time trend; δ is the DiD estimate. Standard errors are
    clustered by ``unit`` (CR1: G/(G−1)·(N−1)/(N−K); statsmodels ``cov_type="cluster"``, as
    Stata); t, p and CI use t(G − 1).
    When G < ``boot_threshold`` a restricted wild-cluster bootstrap p-value (WCR, Cameron,
    Gelbach & Miller 2008) is added: y* = ŷ_r + w_g û_r with the null δ = 0 imposed, weights
    Rademacher (±1) or Webb's six-point (±√½, ±1, ±√(3/2); used when weights="auto" and G ≤ 12),
    p = share of |t*| ≥ |t|. Rademacher weights with 2^G < ``n_boot`` enumerate all 2^G sign vectors
    instead (the exact bootstrap distribution; wildboottest, boottest and fwildclusterboot do the
    same). Vectorised: each replicate needs only G×K numbers. Checked in tests against the
    ``wildboottest`` package (same weights from the same seed).
    Pre-trend check (more than one pre period): within the pre periods, y on treated, period
    effects and treated×period (all but the first pre period), joint Wald F test with the same
    clustered covariance, F(q, G−1) (statsmodels ``wald_test(use_f=True)``).

    data: one row per observation; ``group``: equals ``treated`` for treated units (or a bool
    column); ``period``: sortable period labels; ``post``: the post period labels (default: the
    last period when there are two).
    """
    need = [outcome, unit, group, period]
    miss = [c for c in need if c not in data.columns]
    if miss:
        raise ValueError(f"did: column(s) {miss} not in the data")
    df = data[need].dropna().copy()
    df[outcome] = pd.to_numeric(df[outcome], errors="raise").astype(float)
    df["_treated"] = df[group].astype(bool) if df[group].dtype == bool else (df[group] == treated)
    periods = sorted(df[period].unique())
    if post is None:
        if len(periods) != 2:
            raise ValueError(f"did: {len(periods)} periods {periods}; say which are post with post=[...]")
        post = [periods[-1]]
    post = list(post) if isinstance(post, (list, tuple, set, np.ndarray, pd.Index)) else [post]
    df["_post"] = df[period].isin(post)
    df["_period"] = df[period]
    if not df["_post"].any() or df["_post"].all():
        raise ValueError("did: " + NP_("reason", "need observations both before and after (check post=)"))
    if not df["_treated"].any() or df["_treated"].all():
        raise ValueError("did: " + NP_("reason", "need treated and control units (group column '{}', treated value {})").format(
            group, repr(treated)))
    codes, uniq = pd.factorize(df[unit])
    G = len(uniq)
    if G < 3:
        raise ValueError("did: " + NP_("reason", "{} clusters; clustered inference needs at least 3 units").format(G))
    X = _design(df, periods).to_numpy()
    y = df[outcome].to_numpy()
    fit = _ols_cr1(y, X, codes)
    j = X.shape[1] - 1
    est, se, tval = float(fit.params[j]), float(fit.bse[j]), float(fit.tvalues[j])
    dfree = G - 1
    ci = fit.conf_int(alpha=1 - level)[j]
    means = df.groupby(["_treated", "_post"])[outcome].mean()
    out = {"estimate": est, "se": se, "t": tval, "df": dfree, "p": float(fit.pvalues[j]),
           "ci_low": float(ci[0]), "ci_high": float(ci[1]), "n_obs": len(df), "n_clusters": G,
           "n_treated_clusters": int(df.loc[df["_treated"], unit].nunique()),
           "pilot_before": means.get((True, False), np.nan), "pilot_after": means.get((True, True), np.nan),
           "control_before": means.get((False, False), np.nan), "control_after": means.get((False, True), np.nan),
           "boot_p": np.nan, "boot_weights": "", "n_boot": 0, "pretrend_p": np.nan, "pretrend_f": np.nan,
           "pre_periods": int(len([p for p in periods if p not in post])), "notes": ""}
    notes = [f"{G} clusters; CR1 cluster-robust SE, t({dfree})"]
    if G < boot_threshold and n_boot > 0:
        wname = ("webb" if G <= 12 else "rademacher") if weights == "auto" else weights
        if wname not in ("webb", "rademacher"):
            raise ValueError("weights must be 'auto', 'webb' or 'rademacher'")
        XtX_inv = np.linalg.pinv(X.T @ X)
        c = G / (G - 1) * (len(y) - 1) / (len(y) - X.shape[1])          # CR1 factor of the t*
        rng = np.random.default_rng(seed)
        if wname == "rademacher" and 2 ** G < n_boot:                    # every sign vector once: the exact
            W = np.array(list(itertools.product([-1.0, 1.0], repeat=G))).T  # distribution (as wildboottest)
            n_boot = W.shape[1]
        elif wname == "rademacher":
            W = rng.choice(np.array([-1.0, 1.0]), size=(G, n_boot))
        else:
            W = rng.choice(np.array([-math.sqrt(1.5), -1, -math.sqrt(0.5), math.sqrt(0.5), 1, math.sqrt(1.5)]), size=(G, n_boot))
        Xr = np.delete(X, j, axis=1)
        br = np.linalg.pinv(Xr.T @ Xr) @ Xr.T @ y
        yhat = Xr @ br
        ur = y - yhat
        a = XtX_inv[:, j]
        v = X @ a
        K = np.zeros((G, X.shape[1]))
        np.add.at(K, codes, X * ur[:, None])
        A = np.zeros((G, X.shape[1]))
        np.add.at(A, codes, X * v[:, None])
        cg = np.bincount(codes, weights=v * yhat, minlength=G)
        dg = np.bincount(codes, weights=v * ur, minlength=G)
        Xty = X.T @ yhat
        Bstar = XtX_inv @ (Xty[:, None] + K.T @ W)                        # (k, B)
        S = cg[:, None] + W * dg[:, None] - A @ Bstar                      # (G, B)
        tstar = Bstar[j] / np.sqrt(c * (S ** 2).sum(axis=0))
        # the sign vectors ±1 reproduce t itself; rounding must not decide whether they count (1e-9 relative)
        out.update(boot_p=float(np.mean(np.abs(tstar) >= abs(tval) * (1 - 1e-9))), boot_weights=wname, n_boot=int(n_boot))
        draws = f"all {n_boot} sign vectors" if wname == "rademacher" and 2 ** G == n_boot else f"{n_boot} draws"
        notes.append(f"fewer than {boot_threshold} clusters: wild cluster bootstrap (restricted, {wname} weights, {draws})")
    pre = [p for p in periods if p not in post]
    if len(pre) > 1:
        dpre = df[~df["_post"]]
        Xp_df = _design(dpre, pre, with_treat_post=False, pre_interactions=pre[1:])
        Xp = Xp_df.to_numpy()
        cp, _ = pd.factorize(dpre[unit])
        idx = [i for i, cname in enumerate(Xp_df.columns) if cname.startswith("treated×period")]
        fit_pre = _ols_cr1(dpre[outcome].to_numpy(), Xp, cp)
        cov = np.asarray(fit_pre.cov_params())[np.ix_(idx, idx)]
        if np.linalg.matrix_rank(cov) < len(idx):
            # a cluster-robust covariance has rank at most G − 1: with as many pre-period contrasts as that, the joint
            # test is not defined (R's linearHypothesis(vcov = vcovCL) stops: singular); statsmodels would warn and
            # return a number from a pseudo-inverse
            notes.append(f"pre-trend: {len(idx)} pre-period contrasts need more than {len(np.unique(cp)) - 1} cluster degrees of freedom; "
                         "not tested")
        else:
            wald = fit_pre.wald_test(np.eye(Xp.shape[1])[idx], use_f=True, scalar=True)
            out.update(pretrend_f=float(wald.statistic), pretrend_p=float(wald.pvalue))
            notes.append(f"pre-trend: joint F test of treated×period over {len(pre)} pre periods, p = {out['pretrend_p']:.3g}"
                         + (" — the groups already diverged before the measure; read the DiD with care"
                            if out["pretrend_p"] < 1 - level else ""))
    else:
        notes.append("one pre period: parallel trends cannot be checked")
    out["notes"] = "; ".join(notes)
    return pd.Series(out)


# ---------------------------------------------------------------------------------------------
# metrics of the study
def metric_kind(metric: str, study=None) -> str:
    """'continuous', 'binary' or 'nps' for a metric id: the test family the metric registry names
    (:mod:`study.metrics`; dimension ids are continuous 0-100 scores)."""
    from study import metrics as mx

    return mx.lookup(metric, study).test_kind or "continuous"


def metric_values(study, frames: dict, metric: str) -> pd.DataFrame:
    """Per-observation values of a metric: columns branch_id, date, value.

    Process metrics (per ticket, from frames['process_times']): waiting/handling/cycle minutes;
    first_pass_yield (first_pass 0/1); within_service_level (waiting ≤ target, 0/1); information_accuracy (first_pass
    of the tickets of study.information_accuracy's business type, NaN for other tickets).
    Survey metrics (per respondent, frames['survey']): overall_satisfaction (1-5); csat_mean_0_100
    = (x − min)/(max − min)·100; csat_top2 (x ≥ max − 1, 0/1); nps (0-10 recommend scores; the
    mean of the per-respondent ±100/0 score is the NPS); complaint_rate (0/1). A dimension id:
    its 0-100 score = (mean of its items after reverse-coding − min)/(max − min)·100, reverse
    item x → min + max − x; the mean is over the answered items.
    """
    q = study.questionnaire
    if metric == "information_accuracy":   # first pass of the information-verification tickets (others: NaN)
        if "process_times" not in frames or getattr(study, "information_accuracy", None) is None:
            raise ValueError("metric 'information_accuracy' needs frames['process_times'] and study.information_accuracy")
        pt = frames["process_times"]
        val = pt["first_pass"].astype(float).where(pt["business_type"].astype(str) == study.information_accuracy.business_type)
        return pd.DataFrame({"branch_id": pt["branch_id"].to_numpy(), "date": pd.to_datetime(pt["issued_at"]).to_numpy(),
                             "value": val.to_numpy()})
    if metric in ("waiting_minutes", "handling_minutes", "cycle_minutes", "first_pass_yield", "within_service_level"):
        if "process_times" not in frames:
            raise ValueError(f"metric '{metric}' needs frames['process_times']")
        pt = frames["process_times"]
        date = pd.to_datetime(pt["issued_at"])
        if metric == "first_pass_yield":
            val = pt["first_pass"].astype(float)
        elif metric == "within_service_level":
            val = (pt["waiting_minutes"] <= study.service_level.waiting_target_minutes).astype(float).where(pt["waiting_minutes"].notna())
        else:
            val = pt[metric].astype(float)
        return pd.DataFrame({"branch_id": pt["branch_id"].to_numpy(), "date": date.to_numpy(), "value": val.to_numpy()})
    if "survey" not in frames:
        raise ValueError(f"metric '{metric}' needs frames['survey']")
    sv = frames["survey"]
    date = pd.to_datetime(sv["interview_date"])
    o = q.outcomes.overall_satisfaction
    if metric in study.dimension_ids:
        items = study.scales[metric]
        lo, hi = q.scale.min, q.scale.max
        block = sv[items].astype(float)
        rev = [i for i in items if i in study.reverse_items]
        block[rev] = lo + hi - block[rev]
        val = (block.mean(axis=1) - lo) / (hi - lo) * 100
    elif metric == "overall_satisfaction":
        val = sv[o.column].astype(float)
    elif metric == "csat_mean_0_100":
        val = (sv[o.column].astype(float) - o.scale.min) / (o.scale.max - o.scale.min) * 100
    elif metric == "csat_top2":
        from study.metrics import top2_range

        x = sv[o.column].astype(float)
        val = (x >= top2_range(o.scale.min, o.scale.max)[0]).astype(float).where(x.notna())
    elif metric in ("nps", "recommend_top2"):
        r = q.outcomes.recommend
        if r is None:
            raise ValueError(f"metric '{metric}' needs a recommend outcome in study.yml")
        val = sv[r.column].astype(float)
        if metric == "recommend_top2":
            from study.metrics import top2_range

            val = (val >= top2_range(r.scale.min, r.scale.max)[0]).astype(float).where(val.notna())
    elif metric == "complaint_rate":
        if q.outcomes.complaint is None:
            raise ValueError("metric 'complaint_rate' needs a complaint outcome in study.yml")
        val = sv[q.outcomes.complaint.column].astype(float)
    else:
        raise ValueError(f"unknown metric '{metric}'")
    return pd.DataFrame({"branch_id": sv["branch_id"].to_numpy(), "date": date.to_numpy(), "value": val.to_numpy()})


# ---------------------------------------------------------------------------------------------
# measures on their own calendars

#: Status of a measure against the reported quarters (:func:`measure_window`).
WINDOW_STATUSES = {
    "introduced": "started inside the reported quarter (or between the quarters): before/after around its start",
    "sustained": "started inside or before the baseline quarter: baseline against current quarter, a sustained-effect "
                 "comparison (whether the effect grew or held), not the effect of introducing it",
    "planned": "starts after the reported quarter: listed, not tested",
    "not testable": "no observations on one side of the start with these quarters",
}


def _quarter_bounds(quarter: str) -> tuple[dt.date, dt.date]:
    from study.data.config import quarter_bounds

    return quarter_bounds(quarter)


def _span(first: dt.date, last: dt.date, quarters: dict[str, tuple[dt.date, dt.date]]) -> str:
    """'2025Q1' when the span is a whole quarter, else '2025-04-01 – 2025-05-14'."""
    for q, (a, b) in quarters.items():
        if (first, last) == (a, b):
            return q
    return f"{first:%Y-%m-%d} – {last:%Y-%m-%d}"


def measure_window(measure, baseline_quarter: str | None, current_quarter: str) -> dict:
    """Which observations are "before" and "after" for a measure, given its start date and the quarters.

    Rules (``status``, see :data:`WINDOW_STATUSES`), with B the baseline quarter and C the current one:

    * start after C's last day: ``planned`` (not tested), reason "starts after C";
    * start inside C (its first day included), or between B and C: ``introduced``; before = every
      observation dated before the start (B and C's days before the start), after = on/after the
      start. Without a baseline, a start after C's first day is tested within C alone; a start on
      C's first day is ``not testable`` (nothing before it);
    * start inside B or before it: ``sustained``; before = B, after = C. This shows whether the
      effect grew or held between the quarters, not the effect of introducing the measure. Without
      a baseline: ``not testable``.

    Returns a dict: measure, start, status, reason, split (observations dated before it are
    before, on/after it after; None when not tested), before and after ((first, last) dates or
    None), before_text, after_text, comparison (what the before/after comparison shows), its_ok
    (whether the data can hold weeks before the start, for the interrupted time series) and
    its_reason (why not, else "").
    """
    start = measure.start if isinstance(measure.start, dt.date) else pd.Timestamp(measure.start).date()
    c0, c1 = _quarter_bounds(current_quarter)
    quarters = {current_quarter: (c0, c1)}
    b0 = b1 = None
    if baseline_quarter:
        b0, b1 = _quarter_bounds(baseline_quarter)
        quarters[baseline_quarter] = (b0, b1)
    first_day = b0 if b0 is not None else c0
    out = {"measure": measure.id, "start": start, "status": "", "reason": "", "split": None, "before": None,
           "after": None, "before_text": "", "after_text": "", "comparison": "", "its_ok": False, "its_reason": ""}
    when = f"{start:%Y-%m-%d}"
    if start > c1:
        out.update(status="planned", reason=NP_("reason", "starts after {}").format(current_quarter),
                   its_reason=NP_("reason", "it starts after {}").format(current_quarter))
        return out
    if start < first_day or (b1 is not None and start <= b1):
        if b0 is None:
            out.update(status="not testable",
                       reason=NP_("reason", "started on {}, before {}, and there is no baseline quarter to compare "
                                  "with").format(when, current_quarter),
                       its_reason=NP_("reason", "the data begin after its start on {}").format(when))
            return out
        out.update(status="sustained", split=c0, before=(b0, b1), after=(c0, c1),
                   before_text=_span(b0, b1, quarters), after_text=_span(c0, c1, quarters),
                   comparison=NP_("reason", "sustained effect: whether the effect grew or held between the quarters, not "
                                  "the effect of introducing the measure"),
                   reason=(NP_("reason", "started on {}, inside the baseline quarter {}").format(when, baseline_quarter)
                           if start >= b0 else
                           NP_("reason", "started on {}, before the baseline quarter {}").format(when, baseline_quarter)))
        if start > b0:
            out.update(its_ok=True)
        else:
            out.update(its_reason=NP_("reason", "the data begin on {}, after its start on {}: no weeks before "
                                      "it").format(f"{b0:%Y-%m-%d}", when))
        return out
    # start between the baseline's end (or the current quarter's first day) and the current quarter's end
    if start <= first_day:
        out.update(status="not testable",
                   reason=NP_("reason", "starts on the first day of {} and there is no baseline quarter, so there are "
                              "no observations before it").format(current_quarter),
                   its_reason=NP_("reason", "there are no weeks before its start"))
        return out
    before_parts = []
    if b0 is not None:
        before_parts.append(_span(b0, b1, quarters))
    if start > c0:
        before_parts.append(_span(c0, start - dt.timedelta(days=1), quarters))
    after = (max(start, c0), c1)
    out.update(status="introduced", split=start, before=(first_day, start - dt.timedelta(days=1)), after=after,
               before_text=(NP_("reason", "{} and {}").format(*before_parts) if len(before_parts) == 2 else before_parts[0]),
               after_text=_span(*after, quarters),
               comparison=NP_("reason", "introduction effect: before against after its start"),
               reason=NP_("reason", "started on {}, inside {}").format(when, current_quarter) if start >= c0 else
                      NP_("reason", "started on {}, between {} and {}").format(when, baseline_quarter, current_quarter),
               its_ok=True)
    return out


def _did_value(kind: str, v: pd.Series) -> pd.Series:
    # NPS on the per-respondent scale +100 / 0 / −100: its mean is the NPS, so the DiD is in NPS points
    if kind == "nps":
        from study.stats.scores import nps_points

        return nps_points(v)
    return v


def _metric_dataset(metric: str) -> str:
    from study.metrics import PROCESS_METRIC_IDS

    return "process_times" if metric in PROCESS_METRIC_IDS else "survey"


#: Fewest observations per side (and per group) for a before/after test or a DiD cell.
MIN_PER_SIDE = 2


def evaluate(study, baseline: dict | None, followup: dict, level: float | None = None, n_boot: int = 9999,
             seed: int = 0, power: float = 0.8, windows: dict[str, dict] | None = None) -> pd.DataFrame:
    """Evaluate every metric of every improvement measure of the study.

    For each measure and metric: before/after in the pilot branches and, when the measure has
    control branches, in the control branches (:func:`compare`) and the difference-in-differences
    (:func:`did`, pilot vs control, monthly period effects, clustered by branch). Holm and BH
    adjusted p-values are computed within each family (measure × analysis) over its metrics;
    power achieved and MDE at ``power`` from :func:`power_mde`.

    ``windows`` (measure id → :func:`measure_window`): which observations are before and after
    each measure. Observations of ``baseline`` and those of ``followup`` dated before the window's
    ``split`` are before, the rest of ``followup`` after; a measure whose window is planned or
    not testable gets no rows. Without ``windows``, ``baseline`` is before and ``followup`` after.

    An analysis that cannot run (fewer than :data:`MIN_PER_SIDE` observations on a side of a
    group, no data source for the metric, too few clusters) is a row with ``skipped`` giving the
    reason and NaN statistics; it never raises. Columns (besides :data:`FIELDS`): measure,
    metric, label, kind, analysis, window (the window's status), p_used (the p the verdict uses:
    for a DiD the wild-bootstrap p when it was run, else the cluster-SE p; ``test`` says which:
    ``did_wild_bootstrap`` or ``did_cluster``), boot_p, n_boot, p_holm, p_bh, significant, power,
    mde, se, pretrend_p, n_clusters, skipped.
    """
    alpha = study.alpha
    level = 1 - alpha if level is None else level
    rows = []

    def skipped(m, metric, kind, analysis, reason, window):
        rows.append({"measure": m.id, "metric": metric, "label": study.label(metric), "kind": kind, "analysis": analysis,
                     "window": window, "test": "", "rule": "", "skipped": reason})

    for m in study.measures:
        w = (windows or {}).get(m.id)
        if w is not None and w["status"] not in ("introduced", "sustained"):
            continue
        window = w["status"] if w is not None else "as given"
        analyses = ["pilot before/after"] + (["control before/after", "difference-in-differences"] if m.control else [])
        for metric in m.metrics:
            kind = metric_kind(metric, study)
            dataset = _metric_dataset(metric)
            sources = [f for f in (baseline, followup) if f is not None]
            if any(f.get(dataset) is None for f in sources) or not sources:
                reason = (NP_("reason", "no queue data (process times) for these quarters") if dataset == "process_times"
                          else NP_("reason", "no survey data for these quarters"))
                for a in analyses:
                    skipped(m, metric, kind, a, reason, window)
                continue
            if w is not None:
                va = metric_values(study, followup, metric)
                vb = metric_values(study, baseline, metric) if baseline is not None else va.iloc[0:0]
                split = pd.Timestamp(w["split"])
                cur_before = pd.to_datetime(va["date"]) < split
                both = pd.concat([vb.assign(_post=False), va[cur_before].assign(_post=False),
                                  va[~cur_before].assign(_post=True)], ignore_index=True)
            else:
                if baseline is None:
                    raise ValueError("evaluate: without windows, a baseline is needed (before = baseline, after = followup)")
                both = pd.concat([metric_values(study, baseline, metric).assign(_post=False),
                                  metric_values(study, followup, metric).assign(_post=True)], ignore_index=True)
            both = both.dropna(subset=["value"])
            both["group"] = np.where(both["branch_id"].isin(m.pilot), "pilot",
                                     np.where(both["branch_id"].isin(m.control), "control", "other"))
            counts = both.groupby(["group", "_post"]).size()
            n_of = lambda g, post: int(counts.get((g, post), 0))   # noqa: E731, B023 - used in this iteration
            for grp in ("pilot", "control"):
                if grp == "control" and not m.control:
                    continue
                analysis = f"{grp} before/after"
                nb_, na_ = n_of(grp, False), n_of(grp, True)
                if min(nb_, na_) < MIN_PER_SIDE:
                    skipped(m, metric, kind, analysis,
                            (NP_("reason", "too few observations in the pilot branches: {} before and {} after (at least {} on "
                                 "each side)") if grp == "pilot" else
                             NP_("reason", "too few observations in the control branches: {} before and {} after (at least {} "
                                 "on each side)")).format(nb_, na_, MIN_PER_SIDE), window)
                    continue
                sub = both[both["group"] == grp]
                r = compare(sub.loc[~sub["_post"], "value"], sub.loc[sub["_post"], "value"], kind=kind, level=level)
                pw, mde = power_mde(r, alpha=alpha, power=power)
                rows.append({"measure": m.id, "metric": metric, "label": study.label(metric), "kind": kind,
                             "analysis": analysis, "window": window, **r.to_dict(), "power": pw, "mde": mde,
                             "skipped": ""})
            if not m.control:
                continue
            cells = {(g, post): n_of(g, post) for g in ("pilot", "control") for post in (False, True)}
            if min(cells.values()) < MIN_PER_SIDE:
                skipped(m, metric, kind, "difference-in-differences",
                        NP_("reason", "too few observations for a difference-in-differences: pilot before {}, pilot after {}, "
                            "control before {}, control after {} (at least {} in each)").format(
                            cells[("pilot", False)], cells[("pilot", True)], cells[("control", False)],
                            cells[("control", True)], MIN_PER_SIDE), window)
                continue
            sub = both[both["group"] != "other"].copy()
            sub["period"] = pd.to_datetime(sub["date"]).dt.to_period("M").astype(str)
            sub.loc[sub["_post"], "period"] = "post:" + sub.loc[sub["_post"], "period"]
            sub.loc[~sub["_post"], "period"] = "pre:" + sub.loc[~sub["_post"], "period"]
            sub["y"] = _did_value(kind, sub["value"])
            post = sorted(sub.loc[sub["_post"], "period"].unique())
            try:
                d = did(sub, "y", unit="branch_id", group="group", period="period", post=post, n_boot=n_boot,
                        seed=seed, level=level)
            except ValueError as exc:
                skipped(m, metric, kind, "difference-in-differences", str(exc).removeprefix("did: "), window)
                continue
            boot = bool(np.isfinite(d["boot_p"]))
            row = {"measure": m.id, "metric": metric, "label": study.label(metric), "kind": kind,
                   "analysis": "difference-in-differences", "window": window,
                   "test": "did_wild_bootstrap" if boot else "did_cluster", "rule": "",
                   "statistic": d["t"], "df": d["df"], "p": d["p"], "estimate": d["estimate"],
                   "ci_low": d["ci_low"], "ci_high": d["ci_high"], "se": d["se"],
                   "n_before": int((~sub["_post"]).sum()), "n_after": int(sub["_post"].sum()),
                   "before_value": d["pilot_before"] - d["control_before"],
                   "after_value": d["pilot_after"] - d["control_after"],
                   "effect_size": np.nan, "effect_size_name": "", "boot_p": d["boot_p"], "n_boot": d["n_boot"],
                   "boot_weights": d["boot_weights"],
                   "pretrend_p": d["pretrend_p"], "n_clusters": d["n_clusters"], "assumption_notes": d["notes"],
                   "skipped": ""}
            row["power"], row["mde"] = power_mde(pd.Series(row), alpha=alpha, power=power)
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for col in ("boot_p", "n_boot", "pretrend_p", "n_clusters", "se", "p", "power", "mde"):
        if col not in table:
            table[col] = np.nan
    # the headline p of a DiD with few clusters is the wild-bootstrap p (its test says so)
    table["p_used"] = np.where(table["test"].eq("did_wild_bootstrap"), table["boot_p"], table["p"]).astype(float)
    table["p_holm"] = np.nan
    table["p_bh"] = np.nan
    for _, idx in table.groupby(["measure", "analysis"]).groups.items():
        table.loc[idx, "p_holm"] = adjust_p(table.loc[idx, "p_used"], "holm")
        table.loc[idx, "p_bh"] = adjust_p(table.loc[idx, "p_used"], "bh")
    table["significant"] = table["p_holm"] < alpha
    first = ["measure", "metric", "label", "kind", "analysis", "window", "test", "rule", "estimate", "ci_low", "ci_high",
             "p", "boot_p", "n_boot", "p_used", "p_holm", "p_bh", "significant", "power", "mde", "effect_size",
             "effect_size_name", "n_before", "n_after", "before_value", "after_value", "skipped"]
    for col in first:  # every analysis may have been skipped (then only its reason columns exist)
        if col not in table:
            table[col] = "" if col in ("test", "rule", "effect_size_name", "window", "skipped") else np.nan
    rest = [c for c in table.columns if c not in first]
    return table[first + rest]


# ---------------------------------------------------------------------------------------------
def _level_ci(kind: str, v: np.ndarray, level: float) -> tuple[float, float, float]:
    z = stats.norm.ppf(0.5 + level / 2)
    n = len(v)
    if kind == "binary":
        p = v.mean()
        # Wilson score interval
        centre = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
        half = z * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2)) / (1 + z ** 2 / n)
        return p, centre - half, centre + half
    if kind == "nps":
        val, se = nps_value(v)
        return val, val - z * se, val + z * se
    m = v.mean()
    se = v.std(ddof=1) / math.sqrt(n)
    q = stats.t.ppf(0.5 + level / 2, n - 1)
    return m, m - q * se, m + q * se


def target_attainment(study, followup: dict, baseline: dict | None = None, level: float | None = None,
                      branches: list[str] | None = None) -> pd.DataFrame:
    """Each target of study.yml against the follow-up value and its CI (targets on the request log's metrics are
    left to :func:`study.stats.requests.target_attainment`).

    kind "level": the follow-up value (mean with t CI; proportion with Wilson CI; NPS with normal
    CI); "change": after − before (:func:`compare`); "relative_change": after/before − 1, CI by the
    delta method on the log ratio. Status: "met" when the whole CI is on the right side of the
    target, "not met" when the whole CI is on the wrong side, otherwise "not distinguishable".
    """
    level = 1 - study.alpha if level is None else level
    z = stats.norm.ppf(0.5 + level / 2)
    rows = []
    from study import metrics as mx

    for t in study.targets:
        if mx.lookup(t.metric, study).source in ("requests", "coverage"):
            continue   # decided by study.stats.requests.target_attainment / study.stats.point_service.target_attainment
        kind = metric_kind(t.metric, study)
        va = metric_values(study, followup, t.metric)
        if branches is not None:
            va = va[va["branch_id"].isin(branches)]
        a = va["value"].dropna().to_numpy()
        note = ""
        if len(a) < 2:
            rows.append({"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                         "target_value": t.value, "observed": a.mean() if len(a) else np.nan, "ci_low": np.nan,
                         "ci_high": np.nan, "status": "not measured",
                         "note": f"{len(a)} observation{'s' if len(a) != 1 else ''} this quarter; an interval needs at least 2"})
            continue
        if t.kind == "level":
            obs, lo, hi = _level_ci(kind, a, level)
        else:
            if baseline is None:
                rows.append({"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                             "target_value": t.value, "observed": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                             "status": "no baseline", "note": "a change target needs baseline data"})
                continue
            vb = metric_values(study, baseline, t.metric)
            if branches is not None:
                vb = vb[vb["branch_id"].isin(branches)]
            b = vb["value"].dropna().to_numpy()
            if len(b) < 2:
                rows.append({"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                             "target_value": t.value, "observed": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                             "status": "not measured",
                             "note": f"{len(b)} observation{'s' if len(b) != 1 else ''} in the baseline; a change needs at least 2"})
                continue
            if t.kind == "change":
                r = compare(b, a, kind=kind, test={"continuous": "welch", "binary": "two_proportion", "nps": "nps"}[kind], level=level)
                obs, lo, hi = r["estimate"], r["ci_low"], r["ci_high"]
            else:
                ma, lo_a, hi_a = _level_ci(kind, a, level)
                mb, lo_b, hi_b = _level_ci(kind, b, level)
                sa, sb = (hi_a - lo_a) / (2 * z), (hi_b - lo_b) / (2 * z)
                note = f"before {mb:.4g}, after {ma:.4g}"
                if not (ma > 0 and mb > 0) or not (np.isfinite(sa) and np.isfinite(sb)):
                    # the delta method on the log ratio needs positive values (an NPS can be ≤ 0) and two SEs
                    rows.append({"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind,
                                 "operator": t.operator, "target_value": t.value,
                                 "observed": ma / mb - 1 if mb > 0 else np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan, "status": "not measured",
                                 "note": note + "; a relative change needs positive values before and after"})
                    continue
                obs = ma / mb - 1
                sl = math.sqrt((sa / ma) ** 2 + (sb / mb) ** 2)
                lo, hi = math.exp(math.log(ma / mb) - z * sl) - 1, math.exp(math.log(ma / mb) + z * sl) - 1
        if t.operator == ">=":
            status = "met" if lo >= t.value else "not met" if hi < t.value else "not distinguishable"
        else:
            status = "met" if hi <= t.value else "not met" if lo > t.value else "not distinguishable"
        rows.append({"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                     "target_value": t.value, "observed": obs, "ci_low": lo, "ci_high": hi, "status": status, "note": note})
    return pd.DataFrame(rows)
