"""The process chapter recovers the sample study's known truth.

The generator multiplies every wait in the pilot branches of the first measure by 0.8 from its
start date (truth.json: waiting_relative_change_pilot = −0.20) and leaves the control branches
unchanged; the interrupted time series of weekly waiting time must find exactly that.
"""

from __future__ import annotations

import pytest

from study import process


@pytest.fixture(scope="module")
def its(prepared_sample, study):
    data_dir, truth = prepared_sample
    sources = [data_dir / "processed" / q / "process_times.parquet" for q in truth["process_times"]]
    weekly = process.weekly_series(sources, study)
    return process.its_by_measure(sources, study, weekly=weekly).set_index(["metric", "group"]), truth


def test_its_finds_the_pilot_drop_in_waiting_time(its):
    table, truth = its
    pilot = table.loc[("waiting_minutes", "pilot")]
    true_change = truth["measure"]["waiting_relative_change_pilot"]
    assert pilot["level_p"] < 0.01
    # the level change relative to the projected pre-trend is the generator's −20 %, within ±8 points
    assert abs(pilot["relative_level_change"] - true_change) < 0.08
    # and in minutes it lies within 2.5 standard errors of the expected drop
    assert abs(pilot["level_change"] - truth["measure"]["waiting_minutes_did"]) < 2.5 * pilot["level_se"] + 0.5


def test_its_control_branches_stay_flat(its):
    table, _ = its
    control = table.loc[("waiting_minutes", "control")]
    assert control["level_p"] > 0.05
    assert abs(control["relative_level_change"]) < 0.08


def test_summaries_match_the_generator(prepared_sample, study):
    data_dir, truth = prepared_sample
    src = data_dir / "processed" / truth["baseline"] / "process_times.parquet"
    by_branch = process.summarise(src, by="branch_id", study=study).set_index("branch_id")
    expected = truth["process_times"][truth["baseline"]]["expected_mean_waiting_minutes"]
    # each branch's mean wait is near its Erlang C expectation (sampling error of ~3,000 tickets)
    for branch, mean in expected.items():
        assert abs(by_branch.loc[branch, "waiting_minutes_mean"] - mean) < 0.2 * mean
