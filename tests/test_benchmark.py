"""Competitor benchmark on the source digest's table (ours 5.2 min / 8.3 / 92 % / 12 vs banks A, B, C).

Expected values are worked by hand from the digest's figures (min-max scores, direction-aware):
handling time (lower better, range 4.8-6.1): ours (6.1-5.2)/1.3*100 = 69.23, rank 3;
experience (higher, 7.9-8.5): (8.3-7.9)/0.6*100 = 66.67, rank 2; online coverage (88-95):
(92-88)/7*100 = 57.14, rank 2; value-added services (10-15): (12-10)/5*100 = 40, rank 3.
Composite (weights .3/.3/.2/.2): ours 60.20, A 80.00, B 0.00, C 77.10.
"""

from pathlib import Path

import pandas as pd
import pytest

from study.stats.benchmark import BenchmarkDataError, benchmark_table, composite_index, radar_data

SEED = Path(__file__).parent / "data" / "benchmark_seed.csv"


@pytest.fixture
def seed():
    return pd.read_csv(SEED)


def _ours(t, metric, col):
    return t.loc[(t.metric == metric) & (t.bank == "Our bank"), col].item()


@pytest.mark.parametrize("metric,score,rank,gap_best,gap_avg,behind", [
    ("handling_time", 0.9 / 1.3 * 100, 3, 0.4, 5.2 - (4.8 + 6.1 + 5.0) / 3, 0.4),
    ("experience_score", 0.4 / 0.6 * 100, 2, -0.2, 8.3 - (8.1 + 7.9 + 8.5) / 3, 0.2),
    ("online_coverage", 4 / 7 * 100, 2, -3.0, 92 - 91.0, 3.0),
    ("value_added_services", 40.0, 3, -3.0, 12 - 13.0, 3.0),
])
def test_scores_ranks_gaps(seed, study, metric, score, rank, gap_best, gap_avg, behind):
    t = benchmark_table(seed, study)
    assert _ours(t, metric, "score") == pytest.approx(score, abs=1e-9)
    assert _ours(t, metric, "rank") == rank
    assert _ours(t, metric, "gap_to_best") == pytest.approx(gap_best, abs=1e-9)
    assert _ours(t, metric, "gap_to_average") == pytest.approx(gap_avg, abs=1e-9)
    assert _ours(t, metric, "behind_best") == pytest.approx(behind, abs=1e-9)
    # competitors carry no gaps
    assert t.loc[(t.metric == metric) & (t.bank != "Our bank"), "gap_to_best"].isna().all()


def test_best_and_worst_scores(seed, study):
    t = benchmark_table(seed, study)
    ht = t[t.metric == "handling_time"].set_index("bank")
    assert ht.loc["Bank A", "score"] == 100 and ht.loc["Bank B", "score"] == 0      # lower is better
    ex = t[t.metric == "experience_score"].set_index("bank")
    assert ex.loc["Bank C", "score"] == 100 and ex.loc["Bank B", "score"] == 0     # higher is better


def test_composite(seed, study):
    c = composite_index(seed, study).set_index("bank")
    expected = {"Our bank": 0.3 * 900 / 13 + 0.3 * 400 / 6 + 0.2 * 400 / 7 + 0.2 * 40,
                "Bank A": 0.3 * 100 + 0.3 * 100 / 3 + 0.2 * 100 + 0.2 * 100,
                "Bank B": 0.0,
                "Bank C": 0.3 * 1100 / 13 + 0.3 * 100 + 0.2 * 200 / 7 + 0.2 * 80}
    for bank, v in expected.items():
        assert c.loc[bank, "composite_index"] == pytest.approx(v, abs=1e-9)
    assert c.loc["Our bank", "composite_index"] == pytest.approx(60.198, abs=1e-3)
    assert c["rank"].to_dict() == {"Bank A": 1, "Bank C": 2, "Our bank": 3, "Bank B": 4}
    assert c.loc["Our bank", "is_our_bank"]


def test_radar(seed, study):
    r = radar_data(seed, study)
    assert list(r.columns) == ["Our bank", "Bank A", "Bank B", "Bank C"]
    assert list(r.index) == [study.label(m.id) for m in study.benchmark.metrics]
    assert r.loc["Value-added services", "Our bank"] == pytest.approx(40.0)
    assert ((r >= 0) & (r <= 100)).all().all()


def test_ties_and_missing_metric(study):
    df = pd.DataFrame({"bank": ["Our bank", "X", "Our bank"], "metric": ["handling_time", "handling_time", "online_coverage"],
                       "value": [5.0, 5.0, 90.0]})
    t = benchmark_table(df, study)
    assert (t.loc[t.metric == "handling_time", "score"] == 100).all()
    assert (t.loc[t.metric == "handling_time", "rank"] == 1).all()
    c = composite_index(df, study).set_index("bank")
    assert c.loc["Our bank", "metrics_used"] == 2 and c.loc["X", "metrics_used"] == 1


def test_errors(seed, study):
    with pytest.raises(BenchmarkDataError, match="our bank"):
        benchmark_table(seed[seed.bank != "Our bank"], study)
    with pytest.raises(BenchmarkDataError, match="not defined"):
        benchmark_table(pd.concat([seed, pd.DataFrame([{"bank": "Bank A", "metric": "nps", "value": 3}])]), study)
    with pytest.raises(BenchmarkDataError, match="lacks column"):
        benchmark_table(seed.drop(columns="value"), study)
    with pytest.raises(BenchmarkDataError, match="more than once"):
        benchmark_table(pd.concat([seed, seed.head(1)]), study)
