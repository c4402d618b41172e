"""The process chapter recovers the sample study's known truth.

The generator multiplies every wait in the pilot branches of the first measure by 0.8 from its
start date (truth.json: waiting_relative_change_pilot = −0.20) and leaves the control branches
unchanged; the interrupted time series of weekly waiting time must find exactly that.
"""

from __future__ import annotations

import pytest

from study.stats import process


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


def test_segment_lanes_recover_the_truth(prepared_sample, study):
    """The sample's queue log records the customer segment (digest §2): VIP (affluent) customers wait half as long
    as mass customers and private-banking customers a quarter as long (truth.json: waiting_ratio_to_mass); the
    process chapter's table by segment finds the expected mean waits and the ratios, and the same handling."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    data_dir, truth = prepared_sample
    z = stats.norm.ppf(0.9995)   # 99.9 % intervals: six segments x two quarters checked at once
    for q, t in truth["process_times"].items():
        seg = t["segments"]
        src = data_dir / "processed" / q / "process_times.parquet"
        table = process.process_chapter(src, study)["by_segment"].set_index("segment")
        df = pd.read_parquet(src, columns=["segment", "waiting_minutes", "handling_minutes"])
        g = df.groupby("segment")[["waiting_minutes", "handling_minutes"]].agg(["mean", "std", "count"])
        assert set(table.index) == set(seg["shares"]) == set(g.index)
        for s in seg["shares"]:
            w = g.loc[s, "waiting_minutes"]
            assert table.loc[s, "waiting_minutes_mean"] == pytest.approx(w["mean"], rel=1e-9)
            assert table.loc[s, "n"] == w["count"]
            assert table.loc[s, "n"] / len(df) == pytest.approx(seg["shares"][s], abs=0.015)
            se = w["std"] / np.sqrt(w["count"])
            assert abs(w["mean"] - seg["expected_mean_waiting_minutes"][s]) < z * se, (q, s)
        m = g.loc["mass", "waiting_minutes"]
        for s, ratio in seg["waiting_ratio_to_mass"].items():
            if s == "mass":
                continue
            a = g.loc[s, "waiting_minutes"]
            r = a["mean"] / m["mean"]
            se = r * np.hypot(a["std"] / a["mean"] / np.sqrt(a["count"]), m["std"] / m["mean"] / np.sqrt(m["count"]))
            assert abs(r - ratio) < z * se, (q, s, r)
            # the lane changes waiting only: handling is the same in every segment (Welch, 99.9 %)
            h = stats.ttest_ind(df.loc[df["segment"] == s, "handling_minutes"], df.loc[df["segment"] == "mass", "handling_minutes"],
                                equal_var=False)
            assert h.pvalue > 0.001, (q, s)
