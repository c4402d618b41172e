"""Random valid studies of varied shape (tests/studygen.py) are prepared and rendered, and every rendered
report is checked against its study's facts (tests/report_premises.py) -- issue 10.

Two tests:

* ``test_generated_study_is_valid`` (cheap, many seeds): the generator's own contract -- the study.yml
  loads, every quarter validates, the survey rejects exactly the rows made invalid and keeps the rest.
* ``test_random_study_report`` (``RENDER_SEEDS``): prepare every quarter with ``python -m study
  prepare``, render the report in fast mode (HTML only, ``n_boot`` = 50), run the premise checks.

Shapes the toolkit does not support yet are gated by :data:`KNOWN_GAPS`, one entry per failure bucket
of /work/gen-findings.md, each with its reason and the shape predicate it applies to. A gap without
``checks`` skips the render (the report crashes on that shape); a gap with ``checks`` renders the
report and excuses only those premise checks. Delete an entry when its fix lands: the seeds it
gated then render and are checked.

Select with ``pytest -m random_studies``; part of ``make test``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import pytest

from study import cli, report, validate
from study.config import load_study
from tests import studygen
from tests.report_premises import CHECKS, check_report, read_report

pytestmark = pytest.mark.random_studies

VALIDATE_SEEDS = range(30)
SHAPE_SEEDS = range(60)
RENDER_SEEDS = [1025, 1038, 1168, 1, 1011, 1061, 7, 1010, 1072,   # render on main today (the last six were gated before 001c583)
                0, 1111, 1150]   # one per render-stopping gap still open (B16 B14 B15)
N_BOOT = 50


@dataclass(frozen=True)
class Gap:
    """A shape main does not support yet: a failure bucket of /work/gen-findings.md."""

    reason: str
    applies: Callable[[studygen.GeneratedStudy], bool]
    checks: frozenset[str] = frozenset()     # empty: the render crashes (skip); else: these premise checks fail
    # applies() is called once the study's quarters are prepared, so it may read the processed data.


def _kept_survey(g, q: str) -> int:
    return g.n_survey[q] - g.n_survey_invalid[q]


def _report_quarters(g) -> list[str]:
    return [q for q in (g.baseline, g.current) if q]


def _its_window_short(g) -> bool:
    """A measure whose start leaves fewer than 3 weeks before or 2 weeks after it in the process data."""
    qs = [q for q in _report_quarters(g) if "process_times" in g.sources[q]]
    if not qs or not g.baseline:
        return False
    first = studygen._quarter_bounds(qs[0])[0]
    last = studygen._quarter_bounds(qs[-1])[1]
    return any((m.start - first).days < 4 * 7 or (last - m.start).days < 3 * 7 for m in g.measures)


def _shared_did_metric(g) -> bool:
    """Two measures with control branches name the same metric (DiD rows share a label)."""
    seen: set[str] = set()
    for m in g.measures:
        if m.control:
            if seen & set(m.metrics):
                return True
            seen |= set(m.metrics)
    return False


def _power_mde_crashes(g) -> bool:
    """Whether effects.power_mde raises on this study's group sizes (needs the prepared data)."""
    if not (g.baseline and g.measures):
        return False
    from study import analysis

    ctx = analysis.context(g.study_file, g.data_dir, g.current, g.baseline, n_boot=N_BOOT)
    try:
        analysis.measure_verdicts(ctx)
    except TypeError as exc:
        return "only 0-dimensional arrays" in str(exc) or "only length-1 arrays" in str(exc)
    except Exception:
        return False          # another bucket (or none): the render shows it
    return False


def _effect_sentence_crashes(g) -> bool:
    """Whether the summary's effect sentence raises the B16 KeyError on this study's data."""
    if not (g.baseline and g.measures):
        return False
    from study import analysis, narrative

    ctx = analysis.context(g.study_file, g.data_dir, g.current, g.baseline, n_boot=N_BOOT)
    try:
        narrative.effect_sentence(ctx, analysis.measure_verdicts(ctx), analysis.process_its(ctx)[1])
    except KeyError as exc:
        return "not in index" in str(exc)
    except Exception:
        return False
    return False


def _check(name: str) -> frozenset[str]:
    assert name in CHECKS, name
    return frozenset({name})


# Keyed by the failure bucket's name in /work/gen-findings.md (main @ 001c583). Render-stopping gaps
# first: the first failing cell hides any later one, so a shape may need several of these fixed.
# Fixed on main and removed: B1 no complaint outcome, B2 radar below 3 metrics, B3 no targets, B4 quarter
# with 0-1 rows, B5 ITS window, B6 pilot-only measure, B7 duplicate DiD labels, B8 NPS on 1-5, B9 driver
# regression on few rows, B10 ITS table without measures, B11 recommend_top2, B13 DiD under 3 clusters; P1 score formula, P2 "1-5" labels, P3 "every business type takes longer",
# P5 raw ids in driver prose, P6 "the ten dimension scores", P9 "Of 1 targets".
KNOWN_GAPS: dict[str, Gap] = {
    "B12-power-mde-array": Gap("effects.power_mde via narrative.effect_sentence: TypeError only 0-dimensional arrays can "
                               "be converted to Python scalars (statsmodels solve_power returns an array for some group "
                               "sizes; any measure evaluated against a baseline can hit it)",
                               _power_mde_crashes),
    "B14-relative-change-target-nps": Gap("analysis.targets: ValueError math domain error (a relative_change target on "
                                          "NPS, which can be negative)",
                                          lambda g: bool(g.baseline) and any(t["kind"] == "relative_change" and t["metric"] == "nps"
                                                                             for t in g.definition.get("targets", []))),
    "B15-drivers-few-rows": Gap("analysis.priorities (drivers): LinAlgError Singular matrix when the current quarter has "
                                "few valid rows for its dimensions (seen at 15 rows for 8 dimensions)",
                                lambda g: len(g.dimensions) + 2 <= _kept_survey(g, g.current) < 3 * len(g.dimensions) + 2),
    "B16-effect-sentence-no-comparisons": Gap("narrative.effect_sentence: KeyError \"['estimate', 'ci_low', …] not in "
                                              "index\" when no measure has a before/after comparison (e.g. one planned, "
                                              "one pilot-only with few tickets)", _effect_sentence_crashes),
    "P13-of-1-questionnaires": Gap("Appendix B: '1 valid of 1 questionnaires'", lambda g: 1 in g.n_survey.values(),
                                   _check("plural_after_one")),
    # Premise checks known to fail (the report renders, a sentence is false):
    "P14-nps-test-in-methods": Gap("Appendix A test catalogue lists 'N1 NPS: difference of two NPS' although the study "
                                   "has no NPS (recommend not 0-10; excuses the whole NPS check for these studies)",
                                   lambda g: not g.nps_defined, _check("nps_only_with_0_10_recommend")),
    "P4-markdown-asterisks": Gap("Table 6.1: 'Roll out **name**' / 'Evaluate **name**' / 'Review **name**' with literal **",
                                 lambda g: bool(g.measures), _check("no_markdown_asterisks")),
    "P7-compared-with-nothing": Gap("title page: 'Results for Q, compared with .' when there is no baseline",
                                    lambda g: not g.baseline, _check("no_empty_baseline")),
    "P10-0-improvement-measures": Gap("narrative.measures_intro: 'The study definition lists 0 improvement measures. Each was "
                                      "introduced …' above an empty chapter", lambda g: not g.measures,
                                      _check("no_zero_measures")),
    "P11-fewer-than-1-respondents": Gap("breakdown table notes: 'Groups with fewer than 1 respondents are suppressed' "
                                        "(min_cell_size: 1)", lambda g: g.definition.get("min_cell_size") == 1,
                                        _check("plural_after_one")),
    "P12-1-5-mean-in-measure-metrics": Gap("Chapter 4 measure table: 'Overall satisfaction (1-5 mean)' (config.SURVEY_METRICS "
                                           "label) when overall satisfaction is not on 1-5",
                                           lambda g: g.satisfaction_scale != (1, 5) and any(
                                               "overall_satisfaction" in m.metrics for m in g.measures),
                                           _check("scale_labels_match_study")),
}


def _render_gaps(g) -> list[str]:
    """Buckets that stop the render of this study (evaluated after preparing: some look at the data)."""
    return [name for name, gap in KNOWN_GAPS.items() if not gap.checks and gap.applies(g)]


def _excused_checks(g) -> set[str]:
    """Premise checks known to fail on this study (evaluated after preparing: some look at the data)."""
    return set().union(*[gap.checks for gap in KNOWN_GAPS.values() if gap.checks and gap.applies(g)])


@pytest.mark.parametrize("seed", VALIDATE_SEEDS)
def test_generated_study_is_valid(seed, tmp_path):
    g = studygen.make_study(seed, tmp_path)
    study = load_study(g.study_file)
    assert study.dimension_ids == g.dimensions
    assert [tuple(int(x) for x in (study.questionnaire.scale.min, study.questionnaire.scale.max))] == [g.item_scale]
    for q in g.quarters:
        res = validate.validate_quarter(study, g.study_file, g.data_dir, q)
        survey = res.datasets["survey"].counts
        assert survey["read"] == g.n_survey[q]
        assert survey["rejected"] == g.n_survey_invalid[q], (g.describe(), survey)
        assert survey["kept"] >= 1
        if "process_times" in res.datasets and q in g.n_tickets:
            tickets = res.datasets["process_times"].counts
            assert tickets["rejected"] >= g.n_tickets_invalid[q]
            assert tickets["kept"] >= 1, (g.describe(), tickets)
        assert set(res.datasets) >= g.sources[q]


def test_shapes_vary_over_the_seeds(tmp_path):
    """The seeds cover the shape space the generator promises (so a test over them means something)."""
    shapes = [studygen.make_study(s, tmp_path / str(s)) for s in SHAPE_SEEDS]
    assert {g.item_scale for g in shapes} == set(studygen.SCALES)
    assert {len(g.quarters) for g in shapes} == {1, 2, 3}
    assert min(len(g.dimensions) for g in shapes) == 1 and max(len(g.dimensions) for g in shapes) >= 10
    assert min(len(g.branches) for g in shapes) == 1 and max(len(g.branches) for g in shapes) > 30
    assert any(g.long_branch_names for g in shapes) and any(g.reverse_items for g in shapes)
    assert {m.start_kind for g in shapes for m in g.measures} == set(studygen.START_KINDS)
    assert any(not m.control for g in shapes for m in g.measures) and any(m.control for g in shapes for m in g.measures)
    assert any(not g.measures for g in shapes) and any(not g.complaint for g in shapes)
    assert any(g.recommend_scale != (0, 10) for g in shapes)
    assert min(min(g.n_survey.values()) for g in shapes) <= 2 and max(max(g.n_survey.values()) for g in shapes) >= 1000


@pytest.mark.slow
@pytest.mark.parametrize("seed", RENDER_SEEDS)
def test_random_study_report(seed, tmp_path, capsys):
    g = studygen.make_study(seed, tmp_path)
    for q in g.quarters:
        rc = cli.main(["prepare", "--quarter", q, "--data-dir", str(g.data_dir), "--study", str(g.study_file)])
        assert rc == 0, (g.describe(), capsys.readouterr().out[-2000:])
    skip = _render_gaps(g)
    if skip:
        pytest.skip(f"known gap(s) {skip}: " + "; ".join(KNOWN_GAPS[s].reason for s in skip))
    res = report.render_report(g.current, g.baseline, study_file=g.study_file, data_dir=g.data_dir,
                               out_dir=tmp_path / "reports", pdf=False, parameters={"n_boot": N_BOOT})
    doc = read_report(res.html)
    problems = check_report(g, doc, skip=_excused_checks(g))
    assert not problems, f"{g.describe()}\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())
