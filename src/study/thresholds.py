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

from study.i18n import N_, cite, pgettext, tr

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
    Threshold('alpha', N_("Cronbach's α"), '>=', 0.7, 'Nunnally 1978',
              N_('acceptable internal consistency'),
              N_('internal consistency too low')),
    Threshold('alpha_std', N_('standardised α'), '>=', 0.7, 'Nunnally 1978',
              N_('acceptable internal consistency'),
              N_('internal consistency too low')),
    Threshold('omega_total', N_("McDonald's ω (total)"), '>=', 0.7, 'Nunnally 1978; Hair et al. 2019',
              N_('acceptable reliability'),
              N_('reliability too low')),
    Threshold('cr', N_('composite reliability'), '>=', 0.7, 'Hair et al. 2019; Fornell & Larcker 1981',
              N_('acceptable composite reliability'),
              N_('composite reliability too low')),
    Threshold('ave', N_('average variance extracted'), '>=', 0.5, 'Fornell & Larcker 1981',
              N_("convergent validity supported (the factor explains at least half of its items' variance)"),
              N_("convergent validity not supported (the factor explains less than half of its items' variance)")),
    Threshold('mean_inter_item_r', N_('mean inter-item correlation'), '>=', 0.15, 'Clark & Watson 1995',
              N_('items hang together'),
              N_('items barely correlate')),
    Threshold('item_rest_r', N_('corrected item-total (item-rest) correlation'), '>=', 0.3, 'Nunnally & Bernstein 1994',
              N_('the item fits its scale'),
              N_('the item fits its scale poorly')),
    Threshold('alpha_gain_if_deleted', N_('gain in α if the item is deleted'), '<=', 0.0, 'Nunnally & Bernstein 1994',
              N_('deleting the item would not raise α'),
              N_('deleting the item would raise α; review its wording')),
    Threshold('loading_std', N_('standardised loading'), '>=', 0.5, 'Hair et al. 2019',
              N_('the item reflects its factor'),
              N_('weak loading; the item reflects its factor poorly')),
    Threshold('htmt', N_('heterotrait-monotrait ratio'), '<', 0.85, 'Henseler, Ringle & Sarstedt 2015',
              N_('the two factors are distinct (discriminant validity)'),
              N_('the two factors may not be distinct (discriminant validity in doubt)')),
    Threshold('fornell_larcker_margin', N_('√AVE minus the largest correlation with another factor'), '>', 0.0, 'Fornell & Larcker 1981',
              N_('the factor shares more variance with its items than with other factors'),
              N_('the factor shares as much variance with another factor as with its items')),
    Threshold('cfi', N_('CFI'), '>=', 0.95, 'Hu & Bentler 1999',
              N_('good fit'),
              N_('fit below the convention')),
    Threshold('tli', N_('TLI'), '>=', 0.95, 'Hu & Bentler 1999',
              N_('good fit'),
              N_('fit below the convention')),
    Threshold('rmsea', N_('RMSEA'), '<=', 0.06, 'Hu & Bentler 1999',
              N_('good fit'),
              N_('approximation error above the convention')),
    Threshold('srmr', N_('SRMR'), '<=', 0.08, 'Hu & Bentler 1999',
              N_('good fit'),
              N_('residuals above the convention')),
    Threshold('kmo', N_('Kaiser-Meyer-Olkin measure'), '>=', 0.6, 'Kaiser 1974',
              N_('the correlations are suitable for factor analysis'),
              N_('the correlations are not suitable for factor analysis')),
    Threshold('msa', N_('item measure of sampling adequacy'), '>=', 0.5, 'Kaiser 1974; Hair et al. 2019',
              N_('the item is adequate for factor analysis'),
              N_('the item is inadequate for factor analysis; consider dropping it')),
    Threshold('bartlett_p', N_("Bartlett's test of sphericity p"), '<', 0.05, 'Bartlett 1950',
              N_('the correlation matrix is not an identity matrix'),
              N_('no evidence that the items correlate')),
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


def judge_head(statistic: str, value: float, bound: float | None = None) -> str:
    """The first part of :func:`judge`'s reason in the active language: "RMSEA = 0.092 > 0.06 (Hu & Bentler 1999)"."""
    t = THRESHOLDS[statistic]
    b = t.bound if bound is None else bound
    ok = bool(_OPS[t.op](float(value), b))
    sign = _SHOW[t.op] if ok else _NEG[t.op]
    return pgettext("threshold", "{label} = {value} {sign} {bound} ({reference})").format(
        label=tr(t.label), value=_fmt(float(value)), sign=sign, bound=f"{b:g}", reference=cite(t.reference))


def judge_verdict(statistic: str, value: float, bound: float | None = None) -> str:
    """The judgement part of :func:`judge`'s reason in the active language ("good fit")."""
    t = THRESHOLDS[statistic]
    b = t.bound if bound is None else bound
    return tr(t.good if _OPS[t.op](float(value), b) else t.bad)


def thresholds_table():
    """All thresholds as a DataFrame (statistic, label, rule, reference) for the report's appendix
    (labels in the active language)."""
    import pandas as pd

    return pd.DataFrame([{"statistic": t.statistic, "label": tr(t.label), "rule": f"{_SHOW[t.op]} {t.bound:g}",
                          "reference": cite(t.reference)} for t in THRESHOLDS.values()])
