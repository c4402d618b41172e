"""Conventional thresholds for reliability, validity and model fit, in one place with references.

Every judgement the measurement module makes ("α is acceptable", "RMSEA is too high") comes from
the table :data:`THRESHOLDS` below through :func:`judge`, so a reviewer can see, and a study can
argue about, the rule and where it comes from. The values are conventions, not laws: cite them as
such in the report.

References
----------
- Bartlett, M. S. (1950). Tests of significance in factor analysis. *British Journal of
  Statistical Psychology*, 3, 77-85.
- Clark, L. A., & Watson, D. (1995). Constructing validity: basic issues in objective scale
  development. *Psychological Assessment*, 7(3), 309-319.
- Fornell, C., & Larcker, D. F. (1981). Evaluating structural equation models with unobservable
  variables and measurement error. *Journal of Marketing Research*, 18(1), 39-50.
- Hair, J. F., Black, W. C., Babin, B. J., & Anderson, R. E. (2019). *Multivariate Data
  Analysis* (8th ed.). Cengage.
- Henseler, J., Ringle, C. M., & Sarstedt, M. (2015). A new criterion for assessing discriminant
  validity in variance-based SEM. *Journal of the Academy of Marketing Science*, 43, 115-135.
- Hu, L., & Bentler, P. M. (1999). Cutoff criteria for fit indexes in covariance structure
  analysis. *Structural Equation Modeling*, 6(1), 1-55.
- Kaiser, H. F. (1974). An index of factorial simplicity. *Psychometrika*, 39, 31-36.
- Nunnally, J. C. (1978). *Psychometric Theory* (2nd ed.). McGraw-Hill.
- Nunnally, J. C., & Bernstein, I. H. (1994). *Psychometric Theory* (3rd ed.). McGraw-Hill.
"""

from __future__ import annotations

import math
import operator as _op
from dataclasses import dataclass

__all__ = ["Threshold", "THRESHOLDS", "judge", "thresholds_table"]


@dataclass(frozen=True)
class Threshold:
    """One conventional rule: ``value <op> bound`` is acceptable."""

    statistic: str
    label: str
    op: str  # one of ">=", ">", "<=", "<"
    bound: float
    reference: str
    good: str = "acceptable"
    bad: str = "below the convention"


_OPS = {">=": _op.ge, ">": _op.gt, "<=": _op.le, "<": _op.lt}
_NEG = {">=": "<", ">": "≤", "<=": ">", "<": "≥"}
_SHOW = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}

THRESHOLDS: dict[str, Threshold] = {t.statistic: t for t in [
    Threshold("alpha", "Cronbach's α", ">=", 0.70, "Nunnally 1978", "acceptable internal consistency",
              "internal consistency too low"),
    Threshold("alpha_std", "standardised α", ">=", 0.70, "Nunnally 1978", "acceptable internal consistency",
              "internal consistency too low"),
    Threshold("omega_total", "McDonald's ω (total)", ">=", 0.70, "Nunnally 1978; Hair et al. 2019",
              "acceptable reliability", "reliability too low"),
    Threshold("cr", "composite reliability", ">=", 0.70, "Hair et al. 2019; Fornell & Larcker 1981",
              "acceptable composite reliability", "composite reliability too low"),
    Threshold("ave", "average variance extracted", ">=", 0.50, "Fornell & Larcker 1981",
              "convergent validity supported (the factor explains at least half of its items' variance)",
              "convergent validity not supported (the factor explains less than half of its items' variance)"),
    Threshold("mean_inter_item_r", "mean inter-item correlation", ">=", 0.15, "Clark & Watson 1995",
              "items hang together", "items barely correlate"),
    Threshold("item_rest_r", "corrected item-total (item-rest) correlation", ">=", 0.30,
              "Nunnally & Bernstein 1994", "the item fits its scale", "the item fits its scale poorly"),
    Threshold("alpha_gain_if_deleted", "gain in α if the item is deleted", "<=", 0.0, "Nunnally & Bernstein 1994",
              "deleting the item would not raise α", "deleting the item would raise α; review its wording"),
    Threshold("loading_std", "standardised loading", ">=", 0.50, "Hair et al. 2019",
              "the item reflects its factor", "weak loading; the item reflects its factor poorly"),
    Threshold("htmt", "heterotrait-monotrait ratio", "<", 0.85, "Henseler, Ringle & Sarstedt 2015",
              "the two factors are distinct (discriminant validity)",
              "the two factors may not be distinct (discriminant validity in doubt)"),
    Threshold("fornell_larcker_margin", "√AVE minus the largest correlation with another factor", ">", 0.0,
              "Fornell & Larcker 1981", "the factor shares more variance with its items than with other factors",
              "the factor shares as much variance with another factor as with its items"),
    Threshold("cfi", "CFI", ">=", 0.95, "Hu & Bentler 1999", "good fit", "fit below the convention"),
    Threshold("tli", "TLI", ">=", 0.95, "Hu & Bentler 1999", "good fit", "fit below the convention"),
    Threshold("rmsea", "RMSEA", "<=", 0.06, "Hu & Bentler 1999", "good fit", "approximation error above the convention"),
    Threshold("srmr", "SRMR", "<=", 0.08, "Hu & Bentler 1999", "good fit", "residuals above the convention"),
    Threshold("kmo", "Kaiser-Meyer-Olkin measure", ">=", 0.60, "Kaiser 1974",
              "the correlations are suitable for factor analysis", "the correlations are not suitable for factor analysis"),
    Threshold("msa", "item measure of sampling adequacy", ">=", 0.50, "Kaiser 1974; Hair et al. 2019",
              "the item is adequate for factor analysis", "the item is inadequate for factor analysis; consider dropping it"),
    Threshold("bartlett_p", "Bartlett's test of sphericity p", "<", 0.05, "Bartlett 1950",
              "the correlation matrix is not an identity matrix", "no evidence that the items correlate"),
]}


def _fmt(x: float) -> str:
    if x != 0 and abs(x) < 0.001:
        return f"{x:.2g}"
    return f"{x:.3f}" if abs(x) < 1000 else f"{x:.4g}"


def judge(statistic: str, value: float | None, bound: float | None = None) -> tuple[bool | None, str]:
    """Judge ``value`` of ``statistic`` against its conventional threshold.

    Returns ``(ok, reason)``: ``ok`` is True/False, or None when the value is missing; ``reason``
    is one sentence a reviewer can read, e.g. ``"RMSEA = 0.092 > 0.06 (Hu & Bentler 1999): approximation
    error above the convention."``. ``bound`` overrides the conventional bound (e.g. the study's α
    for Bartlett's p).
    """
    if statistic not in THRESHOLDS:
        raise ValueError(f"no threshold for '{statistic}'; known statistics: {sorted(THRESHOLDS)}")
    t = THRESHOLDS[statistic]
    b = t.bound if bound is None else bound
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, f"{t.label} could not be computed; no judgement."
    ok = bool(_OPS[t.op](float(value), b))
    sign = _SHOW[t.op] if ok else _NEG[t.op]
    return ok, f"{t.label} = {_fmt(float(value))} {sign} {b:g} ({t.reference}): {t.good if ok else t.bad}."


def thresholds_table():
    """All thresholds as a DataFrame (statistic, label, rule, reference) for the report's appendix."""
    import pandas as pd

    return pd.DataFrame([{"statistic": t.statistic, "label": t.label, "rule": f"{t.op} {t.bound:g}",
                          "reference": t.reference} for t in THRESHOLDS.values()])
