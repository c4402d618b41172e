"""The analyses of one quarter against its baseline, shaped for the report chapters.

Each chapter notebook builds a :class:`Context` (study definition, the quarter's processed data and
the baseline's) with :func:`context`, then calls the functions here; they combine the statistics
modules (:mod:`study.stats.scores`, :mod:`study.stats.reliability`, :mod:`study.stats.drivers`,
:mod:`study.stats.effects`, :mod:`study.stats.process`, :mod:`study.stats.benchmark`) and return DataFrames whose
columns are ready to show (labels from study.yml, not ids). Nothing here reads or writes files
except :func:`context`, through :mod:`study.data.io`. The same parameters give the same numbers: every
resampling step takes ``ctx.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from study import i18n
from study import metrics as mx
from study.data import io
from study.data.config import Study, load_study
from study.report import design_analysis as dsa
from study.report.store import RunStore, open_store
from study.stats import benchmark as bm
from study.stats import drivers as drv
from study.stats import effects as eff
from study.stats import process as proc
from study.stats import reliability as rel
from study.stats import scores as sc


def better_direction(metric: str, study: Study | None = None) -> str:
    """'lower' or 'higher': which way a metric should move (from the metric registry)."""
    return mx.lookup(metric, study).direction


def skipped(reason: str) -> dict:
    """The result of an analysis the data cannot support: the report says which and why."""
    return {"skipped": reason}


def is_skipped(result) -> bool:
    return isinstance(result, dict) and "skipped" in result


@dataclass
class Context:
    """What every chapter works from: the study, the quarter, its baseline and the run parameters."""

    study: Study
    current: io.QuarterData
    baseline: io.QuarterData | None
    seed: int = 0
    n_boot: int = 1000
    store: RunStore | None = None
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def quarter(self) -> str:
        return self.current.quarter

    @property
    def baseline_quarter(self) -> str | None:
        return self.baseline.quarter if self.baseline is not None else None

    @property
    def quarters(self) -> list[io.QuarterData]:
        """The quarters present, baseline first."""
        return [q for q in (self.baseline, self.current) if q is not None]

    def has(self, dataset: str, both: bool = False) -> bool:
        """Whether the quarter (and, with ``both``, the baseline too) supplied ``dataset``."""
        qs = self.quarters if both else [self.current]
        return bool(qs) and all(q.has(dataset) for q in qs)

    @property
    def level(self) -> float:
        return 1 - self.study.alpha

    @property
    def level_pct(self) -> str:
        """The confidence level as the active language writes a percentage ("95 %"; "95%" in Chinese)."""
        return i18n.percent(f"{self.level * 100:g}")

    @cached_property
    def fingerprint(self) -> str:
        """A digest of everything a result depends on: the study, the processed data, the parameters."""
        import hashlib
        import json

        parts = {"study": self.study.model_dump(mode="json"), "seed": self.seed, "n_boot": self.n_boot,
                 "data": [(q.quarter, q.manifest.get("outputs")) for q in self.quarters],
                 "baseline": self.baseline_quarter}
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def once(self, key: str, compute):
        """Compute a result once per context (chapters reuse e.g. the driver analysis).

        With a :attr:`store` (a report run passes its results store to every chapter) the result
        is also shared with the other chapter notebooks of the run, keyed by :attr:`fingerprint`,
        so each analysis runs once per run (see :mod:`study.report.store`).
        """
        if key not in self.cache:
            def run():
                with i18n.use("en"):  # results are language-neutral: one analysis serves every report language
                    return compute()

            self.cache[key] = run() if self.store is None else self.store.get(f"{key}-{self.fingerprint}", run)
        return self.cache[key]


def context(study_file: str | Path, data_dir: str | Path, quarter: str, baseline: str | None = None,
            seed: int = 0, n_boot: int = 1000, store: RunStore | str | Path | None = None) -> Context:
    """Load the study definition and the processed data of ``quarter`` (and ``baseline``, if given).

    ``store``: the results store of a report run (its folder, as the notebooks' ``store``
    parameter), shared by the chapters; "" or None computes every result in this kernel.
    Datasets are read when first used (a chapter that reads only stored results reads none).
    """
    study = load_study(study_file)
    cur = io.load_quarter(data_dir, quarter)
    base = io.load_quarter(data_dir, baseline) if baseline else None
    return Context(study=study, current=cur, baseline=base, seed=int(seed), n_boot=int(n_boot), store=open_store(store))


def label(study: Study, key: str) -> str:
    return study.label(key)


# ---------------------------------------------------------------------------------------------
# Satisfaction


def scores_frame(study: Study, survey: pd.DataFrame) -> pd.DataFrame:
    """Per respondent: the grouping columns the survey has (``by_branch_id``, ``by_segment``,
    ``by_channel``), the 0-100 dimension scores (columns named by dimension id), the outcomes,
    ``csat_0_100``, ``top2`` and, where recommend is asked, ``nps_score`` (+100/0/−100 on 0-10) or
    ``recommend_top2``. The grouping columns carry a prefix because a dimension id may equal a survey
    column name (e.g. a "channel" dimension)."""
    dims = sc.dimension_scores(survey, study)
    groups = [c for c in ("branch_id", "segment", "channel") if c in survey.columns]
    out = survey[groups].add_prefix("by_").copy()
    for d in study.dimension_ids:
        out[d] = dims[f"{d}_0_100"]
    o = study.questionnaire.outcomes
    out[o.overall_satisfaction.column] = survey[o.overall_satisfaction.column].astype(float)
    lo, hi = o.overall_satisfaction.scale.min, o.overall_satisfaction.scale.max
    x = out[o.overall_satisfaction.column]
    out["csat_0_100"] = (x - lo) / (hi - lo) * 100
    out["top2"] = (x >= mx.top2_range(lo, hi)[0]).astype(float).where(x.notna())
    if o.recommend is not None:
        r = survey[o.recommend.column].astype(float)
        out[o.recommend.column] = r
        if "nps" in mx.registry(study):
            out["nps_score"] = sc.nps_points(r)
        else:
            out["recommend_top2"] = (r >= mx.top2_range(o.recommend.scale.min, o.recommend.scale.max)[0]).astype(float).where(r.notna())
    if o.complaint is not None:
        out[o.complaint.column] = survey[o.complaint.column].astype(float)
    return out


def satisfaction_summary(ctx: Context) -> pd.DataFrame:
    """CSAT (0-100 and top-2 box), NPS (or the recommend top-2 share) and the complaint rate, where the
    study asks them, for the quarter and the baseline, with CIs."""
    study = ctx.study
    o = study.questionnaire.outcomes
    reg = mx.registry(study)
    rows = []
    for q in reversed(ctx.quarters):
        which = "current" if q is ctx.current else "baseline"
        s = q.survey
        lo, hi = o.overall_satisfaction.scale.min, o.overall_satisfaction.scale.max
        t_lo, t_hi = mx.top2_range(lo, hi)
        c = sc.csat(s[o.overall_satisfaction.column], lo, hi, top=int(t_hi - t_lo + 1), level=ctx.level)
        rows += [
            {"which": which, "quarter": q.quarter, "metric": "csat_mean_0_100", "value": c["mean_0_100"],
             "ci_low": c["mean_0_100_ci_low"], "ci_high": c["mean_0_100_ci_high"], "n": c["n"]},
            {"which": which, "quarter": q.quarter, "metric": "csat_top2", "value": c["top2"],
             "ci_low": c["top2_ci_low"], "ci_high": c["top2_ci_high"], "n": c["n"]},
        ]
        if "nps" in reg:
            n = sc.nps(s[o.recommend.column], level=ctx.level)
            rows.append({"which": which, "quarter": q.quarter, "metric": "nps", "value": n["nps"], "ci_low": n["ci_low"],
                         "ci_high": n["ci_high"], "n": n["n"]})
        for metric in ("recommend_top2", "complaint_rate"):
            if metric in reg:
                k = eff.metric_values(study, {"survey": s}, metric)["value"].dropna()
                lo_, hi_ = sc.wilson_ci(k.sum(), len(k), ctx.level) if len(k) else (np.nan, np.nan)
                rows.append({"which": which, "quarter": q.quarter, "metric": metric, "value": k.mean() if len(k) else np.nan,
                             "ci_low": lo_, "ci_high": hi_, "n": len(k)})
    out = pd.DataFrame(rows)
    out.insert(3, "label", out["metric"].map(lambda m: mx.get(study, m).label))
    return dsa.summary(ctx, out)   # design-based with study.yml sampling


def dimension_table(ctx: Context) -> pd.DataFrame:
    """Per dimension: 0-100 score with CI this quarter, the baseline score and the change with its test
    (Welch t; ``p_holm`` adjusted by Holm over the dimensions)."""
    return ctx.once("dimensions", lambda: _dimension_table(ctx))


def _dimension_table(ctx: Context) -> pd.DataFrame:
    study = ctx.study
    cur = scores_frame(study, ctx.current.survey)
    base = scores_frame(study, ctx.baseline.survey) if ctx.baseline is not None else None
    rows = []
    for d in study.dimension_ids:
        x = cur[d].dropna()
        m = x.mean() if len(x) else np.nan
        if len(x) >= 2:
            se = x.std(ddof=1) / np.sqrt(len(x))
            t = stats.t.ppf(0.5 + ctx.level / 2, len(x) - 1)
            lo, hi = m - t * se, m + t * se
        else:
            lo = hi = np.nan
        row = {"dimension": d, "label": study.label(d), "n": len(x), "score": m, "ci_low": lo, "ci_high": hi}
        if base is not None:
            b = base[d].dropna()
            row["baseline"] = b.mean() if len(b) else np.nan
            if len(b) >= 2 and len(x) >= 2:
                r = eff.compare(b, x, kind="continuous", test="welch", level=ctx.level)
                row.update({"change": r["estimate"], "change_ci_low": r["ci_low"], "change_ci_high": r["ci_high"],
                            "p": r["p"], "g": r["effect_size"]})
            else:
                row.update({"change": m - row["baseline"], "change_ci_low": np.nan,
                            "change_ci_high": np.nan, "p": np.nan, "g": np.nan})
        rows.append(row)
    out = dsa.dimensions(ctx, pd.DataFrame(rows))   # design-based with study.yml sampling
    if base is not None:
        p = out["p"].to_numpy(dtype=float)
        ok = ~np.isnan(p)
        out["p_holm"] = np.nan
        if ok.any():
            out.loc[ok, "p_holm"] = eff.adjust_p(p[ok], "holm")
    return out.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


#: The groupings of the satisfaction breakdown, with the study section that defines their values.
GROUPINGS = {"segment": "segments", "channel": "channels"}


def breakdowns(ctx: Context) -> list[str]:
    """The groupings this study can break satisfaction down by (declared in study.yml and in the data)."""
    return [g for g, section in GROUPINGS.items()
            if getattr(ctx.study, section) and g in ctx.current.survey.columns]


def breakdown(ctx: Context, by: str) -> pd.DataFrame:
    """Overall satisfaction (0-100, top-2 share) and NPS (or the recommend top-2 share) by segment, channel
    or branch; small groups suppressed (see :func:`scores.breakdown`)."""
    study = ctx.study
    f = scores_frame(study, ctx.current.survey)
    values = ["csat_0_100", "top2"] + [c for c in ("nps_score", "recommend_top2") if c in f.columns]
    out = sc.breakdown(f, f"by_{by}", values + study.dimension_ids, min_cell=study.min_cell_size)
    out.insert(1, "label", out[f"by_{by}"].map(study.label))
    return out.rename(columns={"nps_score": "nps"})


# ---------------------------------------------------------------------------------------------
# Measurement


#: Fewest complete questionnaires for the reliability analysis (an item variance needs 2; α and ω
#: with a handful of answers are not worth printing).
MIN_RELIABILITY_N = 10


def measurement(ctx: Context) -> dict:
    """Reliability and validity of the questionnaire this quarter (see :func:`reliability.measurement_report`),
    or :func:`skipped` with the reason when there are too few complete questionnaires."""
    def compute():
        items = ctx.study.item_ids
        n = int(ctx.current.survey[items].notna().all(axis=1).sum())
        if n < MIN_RELIABILITY_N:
            return skipped((i18n.NP_("reason", "{} complete questionnaire; the reliability analysis needs at least {}")
                            if n == 1 else
                            i18n.NP_("reason", "{} complete questionnaires; the reliability analysis needs at least {}")
                            ).format(n, MIN_RELIABILITY_N))
        return rel.measurement_report(ctx.current.survey, ctx.study, level=ctx.level)
    return ctx.once("measurement", compute)


# ---------------------------------------------------------------------------------------------
# Drivers


def drivers(ctx: Context) -> dict:
    """Driver regression, LMG importance (bootstrap CIs), ordered-logit check and the IPA for this quarter."""
    def compute():
        study = ctx.study
        f = scores_frame(study, ctx.current.survey)
        outcome = study.questionnaire.outcomes.overall_satisfaction.column
        dims = study.dimension_ids
        data = f[[outcome] + dims].dropna()
        need = len(dims) + 3
        if len(data) < need:
            templates = {(True, True): i18n.NP_("reason", "{} complete questionnaire for {} dimension; the driver "
                                                "regression needs at least {}"),
                         (True, False): i18n.NP_("reason", "{} complete questionnaire for {} dimensions; the driver "
                                                 "regression needs at least {}"),
                         (False, True): i18n.NP_("reason", "{} complete questionnaires for {} dimension; the driver "
                                                 "regression needs at least {}"),
                         (False, False): i18n.NP_("reason", "{} complete questionnaires for {} dimensions; the driver "
                                                  "regression needs at least {}")}
            return skipped(templates[(len(data) == 1, len(dims) == 1)].format(len(data), len(dims), need))
        const = [d for d in [outcome] + dims if data[d].std(ddof=1) == 0]
        if const:
            return skipped(i18n.NP_("reason", "no variation in {} this quarter").format(
                ", ".join(study.label(c) if c != outcome else "overall satisfaction" for c in const)))
        try:
            model = drv.driver_regression(data, outcome, dims, level=ctx.level)
        except np.linalg.LinAlgError:
            return skipped(i18n.NP_("reason", "the dimension scores are linearly dependent in this quarter's data"))
        model_unweighted = model
        model = dsa.driver_model(ctx, model, f, outcome, dims)   # svyglm on the design with study.yml sampling
        lmg = drv.relative_importance(data, outcome, dims, method="lmg", n_boot=ctx.n_boot, seed=ctx.seed, level=ctx.level,
                                      **dsa.lmg_weights(ctx, data))   # weighted with study.yml sampling
        try:
            ologit = drv.ordered_logit_check(data, outcome, dims, lmg=lmg)
        except (ValueError, np.linalg.LinAlgError):
            ologit = None  # fewer than 3 answer categories, or no fit: the check is left out and the text says nothing of it
        performance = dsa.weighted_performance(ctx, data, dims)
        ipa = drv.importance_performance(lmg, performance)
        lmg = lmg.assign(label=lmg["predictor"].map(study.label))
        return {"data": data, "outcome": outcome, "model": model, "lmg": lmg, "ologit": ologit, "ipa": ipa,
                "performance": performance, "model_unweighted": model_unweighted}
    return ctx.once("drivers", compute)


def priorities(ctx: Context, k: int = 3) -> pd.DataFrame:
    """The dimensions to act on first (documented rule :data:`study.report.text.rules.RULES` ``PRIORITY``).

    Dimensions in the "concentrate here" quadrant, most important first; if fewer than ``k``, the
    remaining places go to the important dimensions with the lowest scores, then to the lowest
    scores overall.
    """
    d = drivers(ctx)
    if is_skipped(d):
        return pd.DataFrame(columns=["priority", "dimension", "importance", "performance", "quadrant", "clause", "label"])
    ipa = d["ipa"].copy()
    ipa["_first"] = ipa["quadrant"].eq("concentrate here")
    ipa["_important"] = ipa["importance"] >= ipa["importance_line"]
    first = ipa[ipa["_first"]].sort_values("importance", ascending=False)
    rest = ipa[~ipa["_first"]].sort_values(["_important", "performance"], ascending=[False, True])
    out = pd.concat([first, rest]).head(k).reset_index(drop=True)
    # which clause of the rule chose each dimension (the text names it)
    out["clause"] = np.where(out["_first"], "concentrate", np.where(out["_important"], "important_low", "low_score"))
    out = out.drop(columns=["_first", "_important"])
    out.insert(0, "priority", range(1, len(out) + 1))
    out["label"] = out["dimension"].map(ctx.study.label)
    return out


# ---------------------------------------------------------------------------------------------
# Headline figures and targets


def headline(ctx: Context) -> pd.DataFrame:
    """The quarter's headline figures against the baseline (all branches): value, change, CI, test, p."""
    return ctx.once("headline", lambda: _headline(ctx))


#: The headline figures, in the order the summary shows them (those the study measures).
HEADLINE_METRICS = ("csat_mean_0_100", "csat_top2", "nps", "recommend_top2", "complaint_rate", "waiting_minutes",
                    "handling_minutes", "first_pass_yield", "within_service_level")


def sources(ctx: Context, both: bool = False) -> set[str]:
    """The datasets supplied this quarter (and, with ``both``, in the baseline too)."""
    return {d for d in ("survey", "process_times", "benchmark") if ctx.has(d, both=both)}


def _headline(ctx: Context) -> pd.DataFrame:
    study = ctx.study
    rows = []
    in_both = set(mx.available(study, HEADLINE_METRICS, sources(ctx, both=True))) if ctx.baseline is not None else set()
    for metric in mx.available(study, HEADLINE_METRICS, sources(ctx)):
        m = mx.get(study, metric)
        kind = m.test_kind
        cur = eff.metric_values(study, ctx.current.frames, metric)["value"].dropna()
        row = {"metric": metric, "label": m.label, "better": m.direction}
        comparable = metric in in_both
        base = eff.metric_values(study, ctx.baseline.frames, metric)["value"].dropna() if comparable else None
        if comparable and len(cur) >= 2 and len(base) >= 2:
            r = eff.compare(base, cur, kind=kind, level=ctx.level)
            row.update({"baseline": r["before_value"], "current": r["after_value"], "change": r["estimate"],
                        "ci_low": r["ci_low"], "ci_high": r["ci_high"], "test": r["test"], "statistic": r["statistic"],
                        "df": r["df"], "p": r["p"], "effect_size": r["effect_size"],
                        "effect_size_name": r["effect_size_name"], "n_before": r["n_before"], "n_after": r["n_after"]})
        else:
            row.update({"current": _level(kind, cur), "n_after": len(cur)})
            if comparable:
                row.update({"baseline": _level(kind, base), "n_before": len(base),
                            "change": _level(kind, cur) - _level(kind, base)})
        rows.append(row)
    out = dsa.headline(ctx, pd.DataFrame(rows))   # design-based with study.yml sampling
    s = sqi_table(ctx)
    if s is not None and "all" in s.index and pd.notna(s.loc["all"].get("sqi_current", np.nan)):
        row = {"metric": "sqi", "label": mx.SQI.label, "better": "higher", "current": s.loc["all", "sqi_current"] * 100}
        if "sqi_baseline" in s.columns and pd.notna(s.loc["all", "sqi_baseline"]):
            row.update({"baseline": s.loc["all", "sqi_baseline"] * 100,
                        "change": (s.loc["all", "sqi_current"] - s.loc["all", "sqi_baseline"]) * 100})
        out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    if ctx.baseline is not None:
        if "p" not in out.columns:
            out["p"] = np.nan
        out["verdict"] = [change_verdict(r, study.alpha) for r in out.to_dict("records")]
    return out


def _level(kind: str | None, v: pd.Series) -> float:
    """A metric's value over observations: the NPS of 0-10 answers, else the mean (a share for 0/1)."""
    if len(v) == 0:
        return np.nan
    return eff.nps_value(v.to_numpy())[0] if kind == "nps" else float(v.mean())


def change_verdict(row: dict, alpha: float) -> str:
    """'improved' / 'worsened' / 'no significant change' / 'not tested' for a headline row."""
    p = row.get("p")
    if p is None or pd.isna(p):
        return "not tested"
    if p >= alpha:
        return "no significant change"
    up = row["change"] > 0
    good = up if row.get("better", "higher") == "higher" else not up
    return "improved" if good else "worsened"


def targets(ctx: Context) -> pd.DataFrame:
    """Each target of study.yml: met / not met / not distinguishable (:func:`effects.target_attainment`);
    a target whose metric needs data this quarter did not supply is listed as "not measured"."""
    def compute():
        study = ctx.study
        base = ctx.baseline.frames if ctx.baseline is not None else None
        now = set(mx.available(study, [t.metric for t in study.targets], sources(ctx)))
        both = set(mx.available(study, [t.metric for t in study.targets], sources(ctx, both=True)))
        # a change target needs its source in the baseline too (without a baseline, target_attainment says so)
        ok = {t.id for t in study.targets
              if t.metric in (now if t.kind == "level" or ctx.baseline is None else both)}
        measured = [t for t in study.targets if t.id in ok]
        res = eff.target_attainment(study.model_copy(update={"targets": measured}), ctx.current.frames, base,
                                    level=ctx.level) if measured else pd.DataFrame()
        rows = [{"target": t.id, "label": t.label, "metric": t.metric, "kind": t.kind, "operator": t.operator,
                 "target_value": t.value, "observed": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                 "status": "not measured",
                 "note": i18n.NP_("reason", "its data source was not supplied for the quarters it compares")}
                for t in study.targets if t.id not in ok]
        res = dsa.targets(ctx, res)   # design-based with study.yml sampling
        out = pd.concat([res, pd.DataFrame(rows)], ignore_index=True) if rows else res
        req = requests(ctx)   # targets on request-log metrics: decided by study.stats.requests (exact intervals, out-of-core)
        if req is not None and len(req["targets"]):
            out = pd.concat([out[~out["target"].isin(req["targets"]["target"])], req["targets"]], ignore_index=True)
        pts = point_service(ctx)   # channel coverage (a census: no interval) and information accuracy (seed §5)
        cov = pts["targets"] if pts is not None else pd.DataFrame()
        if len(cov):
            out = pd.concat([out[~out["target"].isin(cov["target"])] if "target" in out else out, cov], ignore_index=True)
        if not out.empty:  # study order
            order = {t.id: i for i, t in enumerate(study.targets)}
            out = out.sort_values("target", key=lambda c: c.map(order)).reset_index(drop=True)
        return out
    return ctx.once("targets", compute)


def sqi_table(ctx: Context) -> pd.DataFrame | None:
    """SQI overall ("all") and per branch for the quarter (and the baseline), with contributions; None
    when the study defines no SQI or a source of its indicators was not supplied."""
    def compute():
        study = ctx.study
        if not study.sqi:
            return None
        need = {"process_times" if i.source == "process" else "survey" for i in study.sqi}
        if not need <= sources(ctx):
            return None
        cur = _suppress_small_branches(dsa.sqi(ctx, ctx.current, sc.study_sqi(ctx.current.survey, ctx.current.process_times,
                                                                              ctx.study)), ctx.current.survey, study)
        out = cur.add_suffix("_current")
        if ctx.baseline is not None and need <= sources(ctx, both=True):
            base = _suppress_small_branches(dsa.sqi(ctx, ctx.baseline, sc.study_sqi(ctx.baseline.survey,
                                                                                    ctx.baseline.process_times, ctx.study)),
                                            ctx.baseline.survey, study)
            out = out.join(base.add_suffix("_baseline"))
        return out
    return ctx.once("sqi", compute)


def _suppress_small_branches(s: pd.DataFrame, survey: pd.DataFrame | None, study: Study) -> pd.DataFrame:
    """The per-branch SQI with every figure blanked for the branches the branch breakdown suppresses.

    A branch's SQI is computed from its own survey indicators; with the process indicators printed
    beside it, the survey part can be solved for, so a branch with fewer than ``min_cell_size``
    respondents would give its respondents' answers back. The same branches as in the branch
    breakdown (small ones and their complementary suppressions) get no SQI; column ``suppressed``
    says which.
    """
    s = s.copy()
    s["suppressed"] = False
    if survey is None or "branch_id" not in survey.columns or not any(i.source == "survey" for i in study.sqi):
        return s
    n = survey["branch_id"].astype(str).value_counts()
    branches = [b for b in s.index if b != "all"]
    counts = np.array([int(n.get(str(b), 0)) for b in branches])
    sup = sc.complementary_suppression(counts, counts < study.min_cell_size, study.min_cell_size)
    hidden = [b for b, x in zip(branches, sup) if x]
    if hidden:
        values = [c for c in s.columns if c != "suppressed"]
        s[values] = s[values].astype(object)
        s.loc[hidden, values] = np.nan
        s.loc[hidden, "suppressed"] = True
    return s


# ---------------------------------------------------------------------------------------------
# Effects of the improvement measures


def measure_plan(ctx: Context) -> pd.DataFrame:
    """Per measure: how it can be evaluated with this quarter and its baseline (:func:`effects.measure_window`).

    Columns: measure, name, start, status (introduced / sustained / planned / not testable), design
    (difference-in-differences / pilot before/after / not tested), reason, comparison (what the
    before/after comparison shows), before, after (the periods, as text), its_metrics (the
    measure's queue-log metrics that get an interrupted time series) and its_reason (why there
    is no interrupted time series, else "").
    """
    rows = []
    for m in ctx.study.measures:
        w = eff.measure_window(m, ctx.baseline_quarter, ctx.quarter)
        tested = w["status"] in ("introduced", "sustained")
        design = ("difference-in-differences" if m.control else "pilot before/after") if tested else "not tested"
        process_metrics = [x for x in m.metrics if x in mx.PROCESS_METRIC_IDS]
        if not process_metrics:
            its_reason = i18n.NP_("reason", "it lists no queue-log metric (waiting, handling or cycle time, first-pass "
                                  "yield, service level)")
        elif not ctx.has("process_times"):
            its_reason = i18n.NP_("reason", "no queue data (process times) were supplied")
        else:
            its_reason = w["its_reason"]
        rows.append({"measure": m.id, "name": m.name, "start": w["start"], "status": w["status"], "design": design,
                     "reason": w["reason"], "comparison": w["comparison"], "before": w["before_text"],
                     "after": w["after_text"], "its_metrics": process_metrics if not its_reason else [],
                     "its_reason": its_reason})
    return pd.DataFrame(rows, columns=["measure", "name", "start", "status", "design", "reason", "comparison", "before",
                                       "after", "its_metrics", "its_reason"])


def effects(ctx: Context) -> pd.DataFrame:
    """Every metric of every measure in the window its start date allows (:func:`measure_plan`): pilot (and
    control) before/after and, with control branches, the DiD (see :func:`effects.evaluate`); the wild
    bootstrap uses ``ctx.n_boot`` draws and ``ctx.seed``."""
    if not ctx.study.measures:
        return pd.DataFrame()
    windows = {m.id: eff.measure_window(m, ctx.baseline_quarter, ctx.quarter) for m in ctx.study.measures}
    base = ctx.baseline.frames if ctx.baseline is not None else None
    return ctx.once("effects", lambda: dsa.effects(ctx, eff.evaluate(ctx.study, base, ctx.current.frames, level=ctx.level,
                                                                 n_boot=ctx.n_boot, seed=ctx.seed, windows=windows)))


VERDICT_COLUMNS = ["measure", "metric", "label", "better", "status", "design", "test", "estimate", "ci_low", "ci_high",
                   "p_used", "p_holm", "verdict", "control_changed", "reason"]


def measure_verdicts(ctx: Context) -> pd.DataFrame:
    """Per measure and metric: whether the measure improved it (rule ``EFFECT`` in study.report.text.rules).

    The evidence is the DiD when the measure has control branches, else the pilot before/after
    (``design`` says which; weaker evidence). A planned or not testable measure has one row, for
    its first metric, with verdict "not tested" and the ``reason``; so has a metric whose analysis
    was skipped. Columns: :data:`VERDICT_COLUMNS`.
    """
    ev = effects(ctx)
    plan = measure_plan(ctx)
    alpha = ctx.study.alpha
    runs = ev[ev["skipped"].eq("")] if not ev.empty else ev
    by_key = runs.set_index(["measure", "metric", "analysis"]) if not runs.empty else None
    rows = []
    for m, p in zip(ctx.study.measures, plan.to_dict("records")):
        base = {"measure": m.id, "status": p["status"], "design": p["design"], "test": "", "estimate": np.nan,
                "ci_low": np.nan, "ci_high": np.nan, "p_used": np.nan, "p_holm": np.nan, "verdict": "not tested",
                "control_changed": False, "reason": ""}
        if p["design"] == "not tested":
            metric = m.metrics[0]
            rows.append({**base, "metric": metric, "label": ctx.study.label(metric), "better": better_direction(metric),
                         "reason": p["reason"]})
            continue
        for metric in m.metrics:
            row = {**base, "metric": metric, "label": ctx.study.label(metric), "better": better_direction(metric)}
            key = (m.id, metric, p["design"])
            if by_key is None or key not in by_key.index:
                why = ev[(ev["measure"] == m.id) & (ev["metric"] == metric) & (ev["analysis"] == p["design"])] if not ev.empty else ev
                row["reason"] = why["skipped"].iloc[0] if len(why) else i18n.NP_("reason", "not evaluated")
                rows.append(row)
                continue
            r = by_key.loc[key]
            sig = r["p_holm"] < alpha
            right = (r["estimate"] < 0) if row["better"] == "lower" else (r["estimate"] > 0)
            ckey = (m.id, metric, "control before/after")
            c = by_key.loc[ckey] if ckey in by_key.index else None
            row.update(test=r["test"], estimate=r["estimate"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                       p_used=r["p_used"], p_holm=r["p_holm"],
                       verdict="improved" if sig and right else "worsened" if sig else "no evidence of change",
                       control_changed=bool(c is not None and c["p_holm"] < alpha))
            rows.append(row)
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Process times and the competitor benchmark


def process(ctx: Context) -> dict[str, pd.DataFrame] | None:
    """The process-time chapter of this quarter (DuckDB over the processed Parquet log); None when the
    quarter supplied no queue data."""
    if not ctx.has("process_times"):
        return None
    return ctx.once("process", lambda: proc.process_chapter(ctx.current.process_times_path, ctx.study))


def process_its(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly pilot/control series over the baseline and this quarter, and the ITS of each measure on
    its own queue-log metrics (:func:`process.its_by_measure`). A measure without an ITS (no queue-log
    metric, no queue data, planned, or no weeks before its start) has one row with ``status``
    "not fitted" and the reason in ``note``."""
    def compute():
        plan = measure_plan(ctx)
        quarters = [q for q in ctx.quarters if q.has("process_times")]
        cols = ["measure", "metric", "group", "status", "note"]
        weekly = pd.DataFrame(columns=["measure", "group", "week", "metric", "value", "tickets"])
        its = pd.DataFrame(columns=cols)
        if quarters and ctx.study.measures:
            sources = [q.process_times_path for q in quarters]
            weekly = proc.weekly_series(sources, ctx.study)
            its = proc.its_by_measure(sources, ctx.study, weekly=weekly)
        rows = []
        for p in plan.to_dict("records"):
            if p["its_reason"]:
                rows.append(pd.DataFrame([{"measure": p["measure"], "metric": None, "group": None, "status": "not fitted",
                                           "note": p["its_reason"]}]))
            else:
                rows.append(its[its["measure"] == p["measure"]])
        out = pd.concat(rows, ignore_index=True) if rows else its
        return weekly, out.reindex(columns=list(dict.fromkeys(cols + list(out.columns))))
    return ctx.once("its", compute)


def requests(ctx: Context) -> dict | None:
    """The service-request log of this quarter (contact centre, AI assistant, complaints; DuckDB over the
    processed Parquet), the baseline's levels, the targets on request metrics and the channel measures
    (:func:`study.stats.requests.request_analysis`); None when the quarter supplied no request log."""
    if not ctx.has("service_requests"):
        return None
    from study.stats import requests as rq

    def tickets(q):   # from the manifest: the ticket log is not read for a count
        return q.manifest["rows"]["process_times"]["kept"] if q is not None and q.has("process_times") else None

    b = ctx.baseline if ctx.baseline is not None and ctx.baseline.has("service_requests") else None
    return ctx.once("requests", lambda: rq.request_analysis(
        ctx.study, ctx.current.service_requests_path, ctx.quarter, tickets(ctx.current),
        b.service_requests_path if b is not None else None, b.quarter if b is not None else None, tickets(b),
        level=ctx.level))


def point_service(ctx: Context) -> dict | None:
    """Seed §5's channel coverage (study.yml's counts) and customer-information accuracy (DuckDB over the quarter's
    processed ticket log) with their level targets (:func:`study.stats.point_service.point_service`); None when the study
    declares neither."""
    st = ctx.study
    if st.channel_coverage is None and st.information_accuracy is None:
        return None
    from study.stats import point_service as ps

    src = ctx.current.process_times_path if ctx.has("process_times") and st.information_accuracy is not None else None
    return ctx.once("point_service", lambda: ps.point_service(st, ctx.quarter, src, ctx.level))


def benchmark(ctx: Context) -> dict[str, pd.DataFrame] | None:
    """Competitor comparison: per metric and bank, the composite index and the radar data; None when the
    quarter supplied no benchmark."""
    if not ctx.has("benchmark") or ctx.study.benchmark is None:
        return None

    def compute():
        data = ctx.current.benchmark
        table = bm.benchmark_table(data, ctx.study)
        return {"table": table, "composite": bm.composite_index(data, ctx.study, table=table),
                "radar": bm.radar_data(data, ctx.study, table=table)}
    return ctx.once("benchmark", compute)


def data_quality(ctx: Context) -> pd.DataFrame:
    """Rows read, kept and rejected per dataset and quarter, from the manifests."""
    rows = []
    for q in ctx.quarters:
        for dataset, counts in q.manifest["rows"].items():
            rows.append({"quarter": q.quarter, "dataset": dataset, "read": counts["read"], "kept": counts["kept"],
                         "rejected": counts["rejected"], "kept_share": counts["kept"] / counts["read"] if counts["read"] else np.nan})
    return pd.DataFrame(rows)


def rejections(ctx: Context) -> pd.DataFrame:
    """Rejected rows by dataset, quarter and reason (a row can have several reasons)."""
    rows = []
    for q in ctx.quarters:
        for dataset, counts in q.manifest["rows"].items():
            for reason, n in sorted(counts.get("rejected_by_reason", {}).items()):
                rows.append({"quarter": q.quarter, "dataset": dataset, "reason": reason, "rows": n})
    return pd.DataFrame(rows, columns=["quarter", "dataset", "reason", "rows"])


def its_plot_data(ctx: Context, measure_id: str, metric: str | None = None) -> pd.DataFrame:
    """Weekly series of pilot and control with the fitted segments and the pre-trend counterfactual, for one
    of the measure's own queue-log metrics (default: its first with a fitted ITS). Empty when the
    measure has no fitted ITS for that metric (see :func:`process_its` for the reason)."""
    import datetime as dt

    weekly, its = process_its(ctx)
    m = next(m for m in ctx.study.measures if m.id == measure_id)
    fitted = its[(its["measure"] == m.id) & its["status"].eq("fitted")]
    if metric is None:
        metric = fitted["metric"].iloc[0] if len(fitted) else None
    out = []
    for group in ("pilot", "control"):
        if not ((fitted["metric"] == metric) & (fitted["group"] == group)).any():
            continue
        s = weekly[(weekly["measure"] == m.id) & (weekly["group"] == group) & (weekly["metric"] == metric)].copy()
        s["week"] = pd.to_datetime(s["week"])
        r = proc.interrupted_time_series(s, m.start)
        b = r.params.set_index("term")["estimate"]
        wk = s["week"].dt.date
        first = wk.min()
        t = np.array([(d - first).days / 7.0 for d in wk])
        post = (wk >= m.start).to_numpy()
        transition = ((wk < m.start) & (wk.map(lambda d: d + dt.timedelta(days=7)) > m.start)).to_numpy()
        t0 = t[post].min() if post.any() else np.nan
        pre_line = b["intercept"] + b["time"] * t
        fitted_line = pre_line + np.where(post, b["level_change"] + b["slope_change"] * (t - t0), 0.0)
        s["fitted"] = np.where(transition, np.nan, fitted_line)
        s["counterfactual"] = np.where(post, pre_line, np.nan)
        s["group_label"] = f"{group.capitalize()} branches"
        out.append(s)
    if not out:
        return pd.DataFrame(columns=["measure", "group", "week", "metric", "value", "tickets", "fitted", "counterfactual",
                                     "group_label"])
    return pd.concat(out, ignore_index=True)
