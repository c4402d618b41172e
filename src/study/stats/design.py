"""Design-based estimates from a stratified (and optionally raked) survey sample.

DataFrames in, results out; no prose, no formatting. The sampling design comes from study.yml
``sampling`` (:class:`study.data.config.Sampling`): strata with population sizes per quarter (or the
quarter's queue-log ticket counts per branch), or a weight column; optional raking to known
margins (one margin alone is a post-stratification).

Estimator and variance (R's ``survey`` package is the reference, ``tests/reference/design.R``)
----------------------------------------------------------------------------------------------
- Design weight of respondent i in stratum h: ``w_hi = N_h / n_h`` (with population sizes; the
  finite population correction ``1 − n_h/N_h`` enters the variance), or the survey's weight column
  (then with replacement, no fpc) — R: ``svydesign(ids = ~1, strata = ~h, fpc = ~N_h, data)``.
- Means, shares and 0-100 scores are ratio means ``Σ w y / Σ w`` with Taylor-linearised standard
  errors (R ``svymean``); a share's interval is the logit interval of ``svyciprop(method =
  "logit")``, a mean's is ``estimate ± t(df)·se`` with ``df`` = respondents − strata
  (``degf(design)``, as ``confint(..., df = degf(design))``).
- NPS is the mean of the per-respondent points +100 / 0 / −100 (:func:`study.stats.scores.nps_points`):
  the same number as ``100 (p − d)``, and its linearised variance is that of the difference of the
  two shares, ``Var(p) + Var(d) − 2 Cov(p, d)``.
- Design effect (Kish, against simple random sampling without replacement from a population of
  ``Σ w`` — R ``svymean(..., deff = TRUE)``), effective sample size ``n / deff``.
- Comparisons between two independent samples (quarters) and between two domains of one quarter
  (pilot vs control branches): design-based t test (R ``svyttest``).
- Weighted linear regression with design-based standard errors (R ``svyglm``).
- A stratum with a single respondent contributes its deviation from the grand mean (R
  ``options(survey.lonely.psu = "adjust")``).
- Raking / post-stratification to known margins (R ``rake``, ``postStratify``), whose standard
  errors use the calibration residuals.

The estimators are :mod:`svy`'s (the maintained successor of samplics, which is archived); the
tests check them against R's survey package at 1e-8. Only the weights from population sizes and
the bookkeeping (which column, which quarter) are written here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from study import metrics as mx
from study.stats import scores

__all__ = ["Design", "build", "population_sizes", "estimate", "estimates", "compare_samples", "compare_domains",
           "regression", "did", "indicator_frame"]

_STRATUM, _WEIGHT, _POP = "_stratum", "_weight", "_pop_size"


def _svy():
    """svy pulls in polars; import it when a design is used, not when the package is imported."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import polars as pl
        import svy
    return svy, pl


@dataclass
class Design:
    """A survey frame bound to its design: ``frame`` holds the analysis columns plus the stratum
    (``_stratum``), the design weight (``_weight``) and, with population sizes, the stratum size
    (``_pop_size``). ``weighted`` is False for a study without ``sampling`` (every weight 1, a
    simple random sample, as the toolkit has always assumed). ``rake`` lists the margins applied."""

    frame: pd.DataFrame
    weighted: bool
    strata: bool
    fpc: bool
    rake: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.frame)

    def sample(self):
        """The svy.Sample of this design (raked when the study gives margins)."""
        svy, pl = _svy()
        cols = [c for c in self.frame.columns if not c.startswith("_") or c in (_STRATUM, _WEIGHT, _POP)]
        data = pl.from_pandas(self.frame[cols].reset_index(drop=True))
        # A stratum with one respondent has no within-stratum variance; it contributes its deviation
        # from the grand mean, as R does with options(survey.lonely.psu = "adjust").
        d = svy.Design(stratum=_STRATUM if self.strata else None, wgt=_WEIGHT, pop_size=_POP if self.fpc else None,
                       singleton=svy.Singleton("center") if self.strata else None)
        s = svy.Sample(data, d)
        if self.rake:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shares = {m["column"]: dict(m["shares"]) for m in self.rake}
                if len(shares) == 1:
                    (col, sh), = shares.items()
                    s = s.weighting.poststratify(shares=sh, cells=col)
                else:
                    s = s.weighting.rake(shares=shares, tol=1e-12, max_iter=1000)
        return s


def population_sizes(study, quarter: str, process_times: pd.DataFrame | None = None) -> dict[str, float]:
    """Stratum population sizes for ``quarter`` from study.yml ``sampling`` (empty when none apply)."""
    sp = study.sampling
    if sp is None or sp.strata is None:
        return {}
    if sp.population_source == "process_times":
        if process_times is None or "branch_id" not in process_times:
            raise ValueError(f"sampling.population_source is process_times, but {quarter} has no queue log to count tickets in")
        return {str(k): float(v) for k, v in process_times["branch_id"].value_counts().items()}
    return {**{k: float(v) for k, v in sp.population.items()},
            **{k: float(v) for k, v in sp.population_by_quarter.get(quarter, {}).items()}}


def build(frame: pd.DataFrame, study=None, quarter: str | None = None, *, strata: str | None = None,
          population: Mapping[str, float] | None = None, weight: str | None = None,
          rake: list | None = None, process_times: pd.DataFrame | None = None) -> Design:
    """Bind a survey frame to its sampling design.

    From ``study`` (its ``sampling``; ``quarter`` picks the population sizes) or explicitly:
    ``strata`` (column), ``population`` (stratum -> N), ``weight`` (column), ``rake`` (list of
    ``{"column", "shares"}``). Without any of them: every weight 1, no strata (simple random
    sample). Raises ValueError when a stratum in the data has no population size, a size is smaller
    than the stratum's respondents, or weights are missing or not positive.
    """
    notes: list[str] = []
    if study is not None and study.sampling is not None:
        sp = study.sampling
        strata = sp.strata
        weight = sp.weight
        population = population_sizes(study, quarter, process_times) if strata else None
        rake = [{"column": m.column, "shares": dict(m.shares)} for m in sp.rake]
    df = frame.copy().reset_index(drop=True)
    rake = list(rake or [])
    if strata is None and weight is None and not rake:
        df[_WEIGHT] = 1.0
        return Design(df, weighted=False, strata=False, fpc=False)
    if strata is not None:
        df[_STRATUM] = df[strata].astype(str)
    if weight is not None:
        w = pd.to_numeric(df[weight], errors="coerce")
        if not w.between(0, np.inf, inclusive="neither").all():   # missing, zero, negative or infinite
            raise ValueError(f"weight column '{weight}': every respondent needs a positive weight")
        df[_WEIGHT] = w.astype(float)
    elif population is not None and strata is not None:
        n_h = df[_STRATUM].value_counts()
        pop = {str(k): float(v) for k, v in population.items()}
        missing = sorted(set(n_h.index) - set(pop))
        if missing:
            raise ValueError(f"sampling: strata {missing} have respondents but no population size"
                             + (f" in {quarter}" if quarter else ""))
        small = sorted(h for h in n_h.index if pop[h] < n_h[h])
        if small:
            raise ValueError(f"sampling: strata {small} have more respondents than their population size")
        empty = sorted(set(pop) - set(n_h.index))
        if empty:
            notes.append(("strata_without_respondents", empty, sum(pop[h] for h in empty) / sum(pop.values())))
        df[_POP] = df[_STRATUM].map(pop).astype(float)
        df[_WEIGHT] = df[_POP] / df[_STRATUM].map(n_h).astype(float)
    else:
        df[_WEIGHT] = 1.0
    return Design(df, weighted=True, strata=strata is not None, fpc=_POP in df, rake=rake, notes=notes)


def indicator_frame(survey: pd.DataFrame, study) -> pd.DataFrame:
    """The per-respondent values whose means are the bank-wide survey metrics, indexed like ``survey``:
    the overall-satisfaction answer, its 0-100 score, the top-2 indicator (0/1), NPS points (or the
    recommend top-2 indicator), the complaint indicator, and each dimension's 0-100 score. Columns
    are metric ids of the registry."""
    o = study.questionnaire.outcomes
    reg = mx.registry(study)
    out = {}
    sc = o.overall_satisfaction.scale
    s = pd.to_numeric(survey[o.overall_satisfaction.column], errors="coerce").astype(float)
    lo2, _ = mx.top2_range(sc.min, sc.max)
    out["overall_satisfaction"] = s
    out["csat_mean_0_100"] = scores.to_0_100(s, sc.min, sc.max)
    out["csat_top2"] = (s >= lo2).astype(float).where(s.notna())
    if o.recommend is not None:
        r = pd.to_numeric(survey[o.recommend.column], errors="coerce").astype(float)
        if "nps" in reg:
            out["nps"] = scores.nps_points(r)
        elif mx.RECOMMEND_TOP2 in reg:
            lo, _ = mx.top2_range(o.recommend.scale.min, o.recommend.scale.max)
            out[mx.RECOMMEND_TOP2] = (r >= lo).astype(float).where(r.notna())
    if o.complaint is not None:
        c = pd.to_numeric(survey[o.complaint.column], errors="coerce").astype(float)
        out["complaint_rate"] = (c >= o.complaint.scale.max).astype(float).where(c.notna())
    dims = scores.dimension_scores(survey, study)
    for d in study.dimension_ids:
        out[d] = dims[f"{d}_0_100"]
    return pd.DataFrame(out, index=survey.index)


def _df(design: Design) -> int:
    """Degrees of freedom of the design: respondents − strata (R ``degf``)."""
    return design.n - (design.frame[_STRATUM].nunique() if design.strata else 1)


def _srs(y: pd.Series, share: bool, level: float) -> dict:
    y = y.dropna()
    n = len(y)
    m = float(y.mean()) if n else np.nan
    se = float(y.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    if share:
        lo, hi = scores.wilson_ci(m * n, n, level) if n else (np.nan, np.nan)
    else:
        t = stats.t.ppf(0.5 + level / 2, n - 1) if n > 1 else np.nan
        lo, hi = m - t * se, m + t * se
    return {"unweighted": m, "unweighted_se": se, "unweighted_ci_low": lo, "unweighted_ci_high": hi}


def estimate(design: Design, column: str, *, share: bool = False, level: float = 0.95, sample=None,
             svy_row: dict | None = None) -> dict:
    """Design-based estimate of the mean of ``column`` (a share when ``share``: 0/1 values).

    Returns estimate, se, ci_low, ci_high (t(df) interval for a mean; svyciprop's logit interval
    for a share), deff, n, n_eff (= n / deff), df, and the unweighted (simple-random-sample)
    estimate with its se and interval (t, or Wilson for a share) for comparison.
    """
    sub = design.frame[column]
    ok = sub.notna()
    n = int(ok.sum())
    out = {"n": n, "df": np.nan, "estimate": np.nan, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "deff": np.nan, "n_eff": np.nan} | _srs(sub, share, level)
    if n < 2:   # one answer: its value, without an interval
        out.update(estimate=out["unweighted"], n_eff=float(n), deff=np.nan if n == 0 else 1.0)
        return out
    if not design.weighted:
        out.update(estimate=out["unweighted"], se=out["unweighted_se"], ci_low=out["unweighted_ci_low"],
                   ci_high=out["unweighted_ci_high"], deff=1.0, n_eff=float(n), df=n - 1)
        return out
    s = sample if sample is not None else design.sample()
    deff_ref = "wor"   # R svymean(deff = TRUE): against SRS without replacement, N = Σ w
    if svy_row is not None and ok.all():
        e = svy_row
    else:
        e = _svy_mean(s, column, deff_ref, level, None if ok.all() else _svy()[1].col(column).is_not_null())
    est, se = float(e["est"]), float(e["se"])
    df = _df(design) if ok.all() else n - (design.frame.loc[ok, _STRATUM].nunique() if design.strata else 1)
    if share:
        lo, hi = _logit_ci(est, se, df, level)
    else:
        t = stats.t.ppf(0.5 + level / 2, df)
        lo, hi = est - t * se, est + t * se
    deff = float(e["deff"]) if e.get("deff") is not None else np.nan
    out.update(estimate=est, se=se, ci_low=lo, ci_high=hi, deff=deff, n_eff=n / deff if deff and deff > 0 else np.nan, df=df)
    return out


def _svy_mean(s, column, deff_ref: str, level: float, where=None):
    """svy's Taylor mean of one column (``where``: a domain, as R's subset()), or of a list of complete
    columns in one pass (a list of rows). svy refuses a design effect when Σw ≤ n (a census-like
    design): then it is left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = s.estimation.mean(column, deff=deff_ref, alpha=1 - level, where=where)
        except Exception as exc:
            if "DEFF_NOT_COMPUTABLE" not in str(exc):
                raise
            res = s.estimation.mean(column, alpha=1 - level, where=where)
    if isinstance(column, list):
        return [r.to_polars().row(0, named=True) for r in res]
    return res.to_polars().row(0, named=True)


def _logit_ci(p: float, se: float, df: int, level: float) -> tuple[float, float]:
    """R ``svyciprop(method = "logit")``: the t(df) interval on the logit scale, back-transformed."""
    if p <= 0 or p >= 1 or not np.isfinite(se):
        return (p, p) if p in (0.0, 1.0) else (np.nan, np.nan)
    t = stats.t.ppf(0.5 + level / 2, df)
    xi = np.log(p / (1 - p))
    half = t * se / (p * (1 - p))
    return float(1 / (1 + np.exp(-(xi - half)))), float(1 / (1 + np.exp(-(xi + half))))


def estimates(survey: pd.DataFrame, study, quarter: str, *, process_times: pd.DataFrame | None = None,
              level: float = 0.95) -> pd.DataFrame:
    """Bank-wide survey metrics of one quarter on its design: one row per metric id (registry ids
    and dimension ids), columns of :func:`estimate` plus ``kind`` and ``weighted`` (False for a study
    without ``sampling``: then estimate = unweighted)."""
    ind = indicator_frame(survey, study)
    design = build(pd.concat([survey, ind.add_prefix("m__")], axis=1), study, quarter, process_times=process_times)
    s = design.sample() if design.weighted else None
    reg = mx.registry(study)
    complete = ([f"m__{c}" for c in ind.columns if design.frame[f"m__{c}"].notna().all()]
                if design.weighted and design.n >= 2 else [])
    batch = dict(zip(complete, _svy_mean(s, complete, "wor", level))) if complete else {}   # one design build for all
    rows = []
    for col in ind.columns:
        kind = reg[col].kind if col in reg else "score"
        r = estimate(design, f"m__{col}", share=kind == "share", level=level, sample=s, svy_row=batch.get(f"m__{col}"))
        rows.append({"metric": col, "kind": kind, "weighted": design.weighted} | r)
    out = pd.DataFrame(rows).set_index("metric")
    out.attrs["notes"] = design.notes
    return out


def compare_samples(before: Design, after: Design, column: str, level: float = 0.95) -> dict:
    """Difference after − before of two independent samples' means (quarters).

    On the design (either sample weighted): the design-based t test of R ``svyttest(y ~ period)`` on
    the stacked design with strata nested in the periods (:func:`stack`) — ``se = √(se_a² + se_b²)``,
    df = respondents − strata of both samples − 1. Unweighted: Welch's t test.
    """
    a, b = estimate(before, column, level=level), estimate(after, column, level=level)
    return compare_estimates(a, b, before.weighted or after.weighted, level)


def compare_estimates(a: Mapping, b: Mapping, weighted: bool, level: float = 0.95) -> dict:
    """:func:`compare_samples` from the two samples' :func:`estimate` results (estimate, se, df, n)."""
    diff = b["estimate"] - a["estimate"]
    se = float(np.hypot(a["se"], b["se"]))
    if weighted:
        df = a["df"] + b["df"] - 1
    else:   # Welch–Satterthwaite
        va, vb = a["se"] ** 2, b["se"] ** 2
        df = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1)) if va + vb > 0 else np.nan
    t = diff / se if se > 0 else np.nan
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else np.nan
    q = stats.t.ppf(0.5 + level / 2, df) if np.isfinite(df) else np.nan
    return {"before": a["estimate"], "after": b["estimate"], "difference": diff, "se": se, "t": t, "df": df, "p": p,
            "ci_low": diff - q * se, "ci_high": diff + q * se}


def stack(designs: Mapping[str, Design], label: str = "period") -> Design:
    """Several independent samples as one design whose strata are nested in the samples (``label``
    holds each sample's key): the design R builds from the stacked data with strata = period × h."""
    frames = []
    for key, d in designs.items():
        f = d.frame.copy()
        f[label] = key
        f[_STRATUM] = key + ":" + (f[_STRATUM] if d.strata else "all")
        frames.append(f)
    fpc = all(d.fpc for d in designs.values())
    frame = pd.concat(frames, ignore_index=True)
    if not fpc:
        frame = frame.drop(columns=[_POP], errors="ignore")
    return Design(frame, weighted=True, strata=True, fpc=fpc)


def compare_domains(design: Design, column: str, group: str, level: float = 0.95, domain: str | None = None) -> dict:
    """Design-based t test of the difference of ``column``'s mean between the two values of
    ``group`` — R ``svyttest(y ~ group, design)``: second − first value in sorted order, the
    domain difference's Taylor-linearised se, df = degf(design) − 1. ``domain``: a boolean column;
    only its True rows are compared and the others keep the design (R ``svyttest(y ~ group,
    subset(design, domain))``, whose df is the subset's degf − 1)."""
    rows = design.frame[domain].astype(bool) if domain is not None else pd.Series(True, index=design.frame.index)
    levels = sorted(design.frame.loc[rows, group].dropna().unique())
    if len(levels) != 2:
        raise ValueError(f"compare_domains: '{group}' must have exactly two values, has {levels}")
    _, pl = _svy()
    where = None
    if domain is not None:
        where = pl.col(domain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = design.sample().categorical.ttest(column, group=group, alpha=1 - level, where=where)
    d, st = r.diff[0], r.stats
    return {"first": levels[0], "second": levels[1], "difference": float(d.diff), "se": float(d.se), "t": float(st.t),
            "df": float(st.df), "p": float(st.p_value), "ci_low": float(d.lci), "ci_high": float(d.uci)}


def regression(design: Design, y: str, x: list[str], level: float = 0.95) -> pd.DataFrame:
    """Weighted linear regression with design-based (Taylor-linearised) standard errors — R
    ``svyglm(y ~ x1 + ..., design)``: coefficient, se, t, p (t with the residual df, degf − number
    of coefficients + 1, as ``summary.svyglm``) and interval, one row per term (``const`` first).

    Rows with a missing value in ``y`` or ``x`` leave the fit but not the design (R drops them with
    ``design[-nas, ]``, which keeps the strata and the population sizes). ``attrs["fit"]``: n, k, r2
    (weighted: 1 − Σw e² / Σw (y − ȳ_w)²), and the joint Wald F of every predictor with its df
    (R ``regTermTest(fit, ~x1 + ...)``: F(k, residual df))."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = design.sample().glm.fit(y, x=list(x), alpha=1 - level)
    rows = [{"term": "const" if c.term == "_intercept_" else c.term, "coef": float(c.est), "se": float(c.se),
             "t": float(c.wald.value), "df": float(c.wald.df), "p": float(c.wald.p_value), "ci_low": float(c.lci),
             "ci_high": float(c.uci)} for c in fit.coefs]
    out = pd.DataFrame(rows).set_index("term")
    st = fit.stats
    out.attrs["fit"] = {"n": int(st.n), "k": len(x), "r2": float(st.r_squared), "f": float(st.wald.value),
                        "f_df1": float(st.wald.df_num), "f_df2": float(st.wald.df_den), "f_p": float(st.wald.p_value)}
    return out


def did(design: Design, y: str, *, treated: str, post: str, domain: str | None = None, level: float = 0.95) -> dict:
    """Difference-in-differences on the stacked quarters' design (:func:`stack`) — R ``svyglm(y ~
    treated * post, subset(design, domain))``: the coefficient of treated × post, its design-based
    (Taylor-linearised) se, t on the residual df (degf of the domain − 3, as ``summary.svyglm``), p and
    interval, the weighted cell means, respondents and strata.

    Strata, not clusters. Treatment is assigned by branch, and each quarter's sample is stratified
    by branch, so the DiD is a contrast of stratum means. Its design is the one the samples were
    drawn by: the two quarters stacked, strata nested in the quarters (quarter × branch), each
    respondent with its quarter's weight and the finite population correction — the same design as
    the report's quarter-on-quarter tests. The variance is then the sampling error of the comparison,
    known from the design. It treats the pilot and control branches as given: it does not hold
    branch-to-branch differences in change that have nothing to do with the measure. The alternative,
    the branch as the cluster (a branch cannot be both stratum and cluster), estimates that variance
    from the handful of branches a pilot has, which is too noisy to rely on: on the sample study
    (eight branches) it came out below the sampling error itself for three of the four survey
    figures, an impossible variance for a design with that sampling error. Branch-level departures
    from parallel trends are what the pre-trend test and the unweighted branch-clustered DiD with its
    wild bootstrap (:func:`study.stats.effects.did`, shown beside it in the methods appendix) speak to.
    ``treated``/``post``: 0/1 columns; ``domain``: a boolean column, the respondents of the pilot and
    control branches (others keep the design, as R's ``subset``). A study that rakes to margins: the
    stacked design (:func:`stack`) carries each quarter's design weights before raking."""
    f = design.frame.copy()
    f["did__treated_post"] = f[treated].astype(float) * f[post].astype(float)
    rows = f[domain].astype(bool) if domain is not None else pd.Series(True, index=f.index)
    ok = rows & f[[y, treated, post]].notna().all(axis=1)
    g = f[ok]
    out = {"estimate": np.nan, "se": np.nan, "t": np.nan, "df": np.nan, "p": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "n_obs": int(ok.sum()), "n_strata": int(g[_STRATUM].nunique()) if design.strata else 1}
    for t_, p_ in ((1.0, 0.0), (1.0, 1.0), (0.0, 0.0), (0.0, 1.0)):
        cell = g[(g[treated] == t_) & (g[post] == p_)]
        key = ("pilot" if t_ else "control") + ("_after" if p_ else "_before")
        out[key] = float(np.average(cell[y], weights=cell[_WEIGHT])) if len(cell) else np.nan
    if any(np.isnan(out[k]) for k in ("pilot_before", "pilot_after", "control_before", "control_after")):
        return out
    _, pl = _svy()
    dd = Design(f.assign(did__in=ok), weighted=design.weighted, strata=design.strata, fpc=design.fpc, rake=design.rake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = dd.sample().glm.fit(y, x=[treated, post, "did__treated_post"], alpha=1 - level, where=pl.col("did__in"))
    c = next(c for c in fit.coefs if c.term == "did__treated_post")
    out.update(estimate=float(c.est), se=float(c.se), t=float(c.wald.value), df=float(c.wald.df), p=float(c.wald.p_value),
               ci_low=float(c.lci), ci_high=float(c.uci))
    return out
