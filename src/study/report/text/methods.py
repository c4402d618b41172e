"""Appendix A, methods: the introduction, formulas, test-choice rules and thresholds."""

from __future__ import annotations

import pandas as pd

from study import i18n
from study import metrics as mx
from study.i18n import N_, _, pgettext
from study.report import present as P
from study.report.analysis import Context
from study.report.text.current_state import SQI_FORMULA
from study.report.text.words import _level

FORMULAS = [
    (SQI_FORMULA, N_("reversed, (X_max − X_i)/(X_max − X_min), for indicators where lower is better; X clipped to the historical range")),
    (r"\alpha = \frac{k}{k-1}\left(1 - \frac{\sum_j s_j^2}{s_X^2}\right)", N_("Cronbach's α of a scale of k items with sum score X")),
    (r"\omega = \frac{(\sum \lambda_j)^2}{(\sum \lambda_j)^2 + \sum \theta_j}", N_("McDonald's ω from a one-factor ML model of the scale")),
    (r"\mathrm{NPS} = 100\,(p - d), \quad \mathrm{SE} = 100\sqrt{\frac{p + d - (p - d)^2}{n}}", N_("p promoters (9-10), d detractors (0-6)")),
    (r"\mathrm{LMG}_j = \frac{1}{p!}\sum_{\pi} \left[R^2(S_j^{\pi} \cup \{j\}) - R^2(S_j^{\pi})\right]",
     N_("the average gain in R² from adding predictor j over all p! orders (Shapley value of R²)")),
    (r"y_{bt} = \alpha_b + \gamma_t + \delta \, D_{bt} + \varepsilon_{bt}",
     N_("difference-in-differences with period effects, δ the effect; SE clustered by branch")),
]


def methods_intro(ctx: Context) -> P.Md:
    return P.md("All tests are two-sided at α = {} with {} confidence intervals. Bootstrap intervals use {} resamples with "
                "seed {}. Survey analyses use listwise deletion per scale. Every statistic of the toolkit is checked in its "
                "test suite against R (psych, lavaan, semTools, effectsize, stats) or published values.",
                P.fmt_num(ctx.study.alpha, 2, leading_zero=False), _level(ctx), P.fmt_int(ctx.n_boot), ctx.seed)


def test_rules(ctx: Context | None = None) -> pd.DataFrame:
    """The rules choosing a comparison's test; with ``ctx``, only those that can apply to this study (no NPS
    rule without an NPS, no share rule without a share metric)."""
    from study.stats.effects import RULES as TEST_RULES

    rules = dict(TEST_RULES)
    if ctx is not None:
        kinds = {m.test_kind for m in mx.registry(ctx.study).values()}
        rules = {k: v for k, v in rules.items() if not (k.startswith("N") and "nps" not in kinds)
                 and not (k.startswith("B") and "binary" not in kinds)}
    return pd.DataFrame({pgettext("column", "Rule"): list(rules),
                         _("When it applies and what it chooses"): [i18n.tr(v) for v in rules.values()]})


def formulas(ctx: Context) -> list[tuple[str, str]]:
    """The formulas of Appendix A that this study's report uses."""
    out = []
    for tex, where in FORMULAS:
        if tex == SQI_FORMULA and not ctx.study.sqi:
            continue
        if "NPS" in tex and "nps" not in mx.registry(ctx.study):
            continue
        if "LMG" in tex and len(ctx.study.dimension_ids) < 2:
            continue
        if "D_{bt}" in tex and not any(m.control for m in ctx.study.measures):
            continue
        out.append((tex, i18n.tr(where)))
    return out


def thresholds() -> pd.DataFrame:
    from study.thresholds import thresholds_table

    t = thresholds_table()
    if i18n.language() != "en":   # the label names the statistic; its id (alpha_std) is code
        t = t.drop(columns=["statistic"])
    names = {"statistic": pgettext("column", "Statistic"), "label": pgettext("column", "Label"),
             "rule": pgettext("column", "Rule"), "reference": pgettext("column", "Reference")}
    return t.rename(columns=names)
