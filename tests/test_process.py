"""Process-time chapter (study.stats.process) and the large-log generator (study.sample.log).

References:
* aggregates: a slow, obvious pandas/numpy computation on small data (numpy 'linear' quantiles =
  R type 7), for both engines, every grouping key, Parquet file/folder/glob/list and DataFrame input,
  plus hypothesis property tests (values on and off the one-second grid, NULLs);
* Erlang C: the published worked example (pyworkforce README; R package ErlangC 0.1.0 README):
  100 calls / 30 min, AHT 180 s -> 14 agents, P(wait) 0.1741319, SL(20 s) 0.88835, ASA 7.836 s;
  11 agents -> 0.6821182; and tests/reference/process_erlang.R;
* Little's law: a simulated M/M/1 queue (rho = 0.5, Lq = rho^2 / (1 - rho) = 0.5);
* ITS: tests/reference/process_its.R (R lm + sandwich::NeweyWest) on tests/data/its_weekly.csv,
  and the sample log's known pilot effect (-20 % waiting in pilot branches, control flat).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from study.errors import DataFileError
from study.sample.log import SCHEMA, write_process_log
from study.stats import process as P

DATA = Path(__file__).parent / "data"
MEASURES = P.MEASURES


# ---------------------------------------------------------------------------------------------
# small synthetic logs and the slow reference


def make_log(n: int = 3000, seed: int = 0, whole_seconds: bool = True, null_channel: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 40, n)
    issued = (pd.Timestamp("2025-01-06 09:00") + pd.to_timedelta(day, unit="D")
              + pd.to_timedelta(rng.integers(0, 8 * 3600, n), unit="s"))
    unit = "s" if whole_seconds else "us"
    scale = 1 if whole_seconds else 1_000_000
    wait = rng.integers(0, 40 * 60 * scale, n)
    walk = rng.integers(0, 60 * scale, n)
    hand = rng.integers(60 * scale, 45 * 60 * scale, n)
    called = issued + pd.to_timedelta(wait, unit=unit)
    started = called + pd.to_timedelta(walk, unit=unit)
    finished = started + pd.to_timedelta(hand, unit=unit)
    branch = rng.choice(["B01", "B02", "B03", "B05"], n)
    channel = rng.choice(["walk_in", "appointment"], n).astype(object)
    if null_channel:
        channel[rng.random(n) < 0.05] = None
    df = pd.DataFrame({
        "ticket_id": [f"T{i}" for i in range(n)], "branch_id": branch,
        "business_type": rng.choice(["deposit", "account_opening", "loan_enquiry"], n),
        "counter_id": [f"{b}-C{k:02d}" for b, k in zip(branch, rng.integers(1, 4, n))],
        "channel": channel,
        "issued_at": issued.astype("datetime64[us]"), "called_at": called.astype("datetime64[us]"),
        "started_at": started.astype("datetime64[us]"), "finished_at": finished.astype("datetime64[us]"),
        "first_pass": rng.random(n) < 0.8,
    })
    minutes = lambda a, b: (df[b] - df[a]).dt.total_seconds() / 60.0  # noqa: E731
    df["waiting_minutes"] = minutes("issued_at", "called_at")
    df["handling_minutes"] = minutes("started_at", "finished_at")
    df["cycle_minutes"] = minutes("issued_at", "finished_at")
    return df


def slow_summary(df: pd.DataFrame, by: tuple[str, ...], target: float = 10.0) -> pd.DataFrame:
    """The obvious computation: loop over groups, numpy mean / quantile(method='linear')."""
    d = df.copy()
    d["hour"] = d["issued_at"].dt.hour
    d["date"] = d["issued_at"].dt.date
    d["week"] = (d["issued_at"].dt.normalize() - pd.to_timedelta(d["issued_at"].dt.day_of_week, unit="D")).dt.date
    rows = []
    for key, g in d.groupby(list(by), dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = {k: (None if (v is None or (isinstance(v, float) and np.isnan(v))) else v) for k, v in zip(by, key)}
        row["n"] = len(g)
        for m in MEASURES:
            x = g[m].dropna().to_numpy()
            row[f"{m}_mean"] = x.mean() if len(x) else np.nan
            for name, p in P.QUANTILES.items():
                row[f"{m}_{name}"] = np.quantile(x, p, method="linear") if len(x) else np.nan
        w = g["waiting_minutes"].dropna()
        row["within_service_level"] = (w <= target).mean() if len(w) else np.nan
        row["first_pass_yield"] = g["first_pass"].astype(float).mean()
        rows.append(row)
    return pd.DataFrame(rows)


def assert_same(ours: pd.DataFrame, ref: pd.DataFrame, by) -> None:
    norm = lambda v: "NULL" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)  # noqa: E731
    key = lambda df: df[list(by)].apply(lambda s: s.map(norm)).agg("|".join, axis=1)  # noqa: E731
    a = ours.assign(_k=key(ours)).set_index("_k").sort_index()
    b = ref.assign(_k=key(ref)).set_index("_k").sort_index()
    assert list(a.index) == list(b.index)
    assert (a["n"].to_numpy() == b["n"].to_numpy()).all()
    cols = [c for c in b.columns if c not in by and c != "n"]
    np.testing.assert_allclose(a[cols].to_numpy(float), b[cols].to_numpy(float), rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.fixture(scope="module")
def small():
    return make_log()


@pytest.fixture(scope="module")
def small_parquet(tmp_path_factory, small):
    d = tmp_path_factory.mktemp("log")
    half = len(small) // 2
    (d / "q").mkdir()
    small.iloc[:half].to_parquet(d / "q" / "part-0.parquet", index=False)
    small.iloc[half:].to_parquet(d / "q" / "part-1.parquet", index=False)
    return d


BYS = [("business_type",), ("branch_id",), ("channel",), ("counter_id",), ("hour",), ("week",), ("date",),
       ("business_type", "branch_id"), ("channel", "hour")]


@pytest.mark.parametrize("engine", ["histogram", "sql"])
@pytest.mark.parametrize("by", BYS)
def test_summarise_matches_slow_pandas(small, engine, by):
    assert_same(P.summarise(small, by=by, engine=engine), slow_summary(small, by), by)


def test_sources_file_folder_glob_list(small, small_parquet):
    ref = slow_summary(small, ("branch_id",))
    files = sorted(str(p) for p in (small_parquet / "q").glob("*.parquet"))
    for source in (small_parquet, str(small_parquet / "q" / "*.parquet"), files):
        assert_same(P.summarise(source, by="branch_id"), ref, ("branch_id",))
    one = P.summarise(files[0], by="branch_id")
    assert one["n"].sum() == len(small) // 2


def test_minutes_derived_from_timestamps(small):
    bare = small.drop(columns=list(MEASURES))
    assert_same(P.summarise(bare, by="business_type"), slow_summary(small, ("business_type",)), ("business_type",))


def test_off_grid_values_fall_back_and_stay_exact():
    df = make_log(800, seed=3, whole_seconds=False)
    assert not np.allclose(df["waiting_minutes"] * 60, np.round(df["waiting_minutes"] * 60))
    assert_same(P.summarise(df, by="hour"), slow_summary(df, ("hour",)), ("hour",))
    with pytest.raises(P.ProcessDataError, match="grid"):
        P.summarise(df, by="hour", engine="histogram")


def test_unknown_ids_fall_back(study, small):
    odd = small.copy()
    odd.loc[:9, "branch_id"] = "X99"                      # not in study.yml
    assert_same(P.summarise(odd, by="branch_id", study=study), slow_summary(odd, ("branch_id",)), ("branch_id",))


def test_standard_vs_actual(study, small):
    out = P.summarise(small, study=study).set_index("business_type")
    std = {b.id: b for b in study.business_types}
    for bt, row in out.iterrows():
        assert row.standard_minutes == std[bt].standard_minutes
        assert row.deviation_pct == pytest.approx((row.handling_minutes_mean - std[bt].standard_minutes)
                                                  / std[bt].standard_minutes * 100)
        assert row.improvement_potential == pytest.approx(row.cycle_minutes_mean - std[bt].ideal_cycle_minutes)


def test_seed_standard_vs_actual_example(study):
    # digest: account opening standard 15 min, actual 25 min -> +66.7 %; cycle 48 vs ideal 30 -> 18 min
    t0 = pd.Timestamp("2025-01-06 09:00")
    df = pd.DataFrame({"branch_id": ["B01"] * 2, "business_type": ["account_opening", "info_verification"],
                       "issued_at": [t0, t0], "called_at": [t0, t0], "started_at": [t0, t0],
                       "finished_at": [t0 + pd.Timedelta(minutes=25), t0 + pd.Timedelta(minutes=48)],
                       "first_pass": [True, False]})
    out = P.summarise(df, study=study).set_index("business_type")
    assert out.loc["account_opening", "deviation_pct"] == pytest.approx(200 / 3)
    assert out.loc["info_verification", "improvement_potential"] == pytest.approx(18.0)


def test_service_level_target(small):
    a = P.summarise(small, by="branch_id", waiting_target=5.0)
    assert_same(a, slow_summary(small, ("branch_id",), target=5.0), ("branch_id",))


def test_errors(small, tmp_path):
    with pytest.raises(P.ProcessDataError, match="unknown grouping"):
        P.summarise(small, by="colour")
    with pytest.raises(DataFileError, match="no such"):
        P.summarise(tmp_path / "nothing.parquet")
    with pytest.raises(DataFileError, match="no Parquet"):
        P.summarise(tmp_path)
    with pytest.raises(P.ProcessDataError, match="waiting_minutes"):
        P.summarise(small.drop(columns=["waiting_minutes", "called_at"]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_quantiles_match_numpy(data):
    n = data.draw(st.integers(1, 60))
    on_grid = data.draw(st.booleans())
    if on_grid:
        vals = data.draw(st.lists(st.integers(-600, 20_000), min_size=n, max_size=n))
        w = np.array(vals, dtype=float) / 60.0
    else:
        w = np.array(data.draw(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=n, max_size=n)))
    nulls = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    w[nulls & (np.arange(n) > 0)] = np.nan
    groups = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    t0 = pd.Timestamp("2025-01-06 09:00")
    df = pd.DataFrame({"branch_id": "B01", "business_type": groups, "issued_at": t0,
                       "first_pass": True, "waiting_minutes": w, "handling_minutes": w * 2, "cycle_minutes": w + 1.5})
    df["issued_at"] = df["issued_at"].astype("datetime64[us]")
    assert_same(P.summarise(df, by="business_type"), slow_summary(df, ("business_type",)), ("business_type",))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=40), st.floats(0, 1))
def test_property_quantiles_from_counts(values, p):
    x = np.array(values, dtype=float)
    u, c = np.unique(x, return_counts=True)
    assert P.quantiles_from_counts(u, c, [p])[0] == pytest.approx(np.quantile(x, p, method="linear"), abs=1e-12)


def test_summarise_many_is_one_pass_equivalent(small):
    many = P.summarise_many(small, [("hour",), ("business_type", "channel")])
    assert_same(many[0], slow_summary(small, ("hour",)), ("hour",))
    assert_same(many[1], slow_summary(small, ("business_type", "channel")), ("business_type", "channel"))


# ---------------------------------------------------------------------------------------------
# Erlang C, published example


def test_erlang_c_published_example():
    lam, mu = 100 / 30, 1 / 3            # per minute: 100 calls per 30 min, AHT 3 min -> A = 10 Erlangs
    assert P.erlang_c(lam, mu, 14) == pytest.approx(0.1741319336, abs=1e-9)   # published 0.1741319335950498
    assert P.erlang_c(lam, mu, 11) == pytest.approx(0.6821182047, abs=1e-9)   # published 0.6821182
    assert P.service_level(lam, mu, 14, 20 / 60) == pytest.approx(0.8883500192, abs=1e-9)  # published 0.88835
    assert P.mean_wait(lam, mu, 14) * 60 == pytest.approx(7.8359370118, abs=1e-8)         # ASA 7.836 s
    assert P.required_servers(lam, mu, 20 / 60, 0.8) == 14                                  # published 14 agents
    assert P.service_level(lam, mu, 11, 20 / 60) == pytest.approx(0.3896138117, abs=1e-9)  # R, process_erlang.R


def test_erlang_c_bank_counter_vs_r():
    # Rscript tests/reference/process_erlang.R: 30 customers/h, 12 min handling, target 10 min
    lam, mu = 30.0, 5.0
    r = {7: (0.6138301231, 0.7332305282), 8: (0.3569810859, 0.9325749822), 9: (0.1959809127, 0.9839129071)}
    for c, (pw, sl) in r.items():
        assert P.erlang_c(lam, mu, c) == pytest.approx(pw, abs=1e-9)
        assert P.service_level(lam, mu, c, 10 / 60) == pytest.approx(sl, abs=1e-9)
    assert P.required_servers(lam, mu, 10 / 60, 0.80) == 8
    assert P.required_servers(lam, mu, 10 / 60, 0.95) == 9


def test_erlang_edge_cases():
    assert P.erlang_c(5, 1, 5) == 1.0 and P.service_level(5, 1, 4, 1) == 0.0
    assert P.erlang_c(0, 1, 3) == 0.0 and P.required_servers(0, 1, 1, 0.8) == 0
    # large loads stay finite (stable recursion, no factorials)
    c = P.required_servers(5000.0, 3.0, 10 / 60, 0.8)
    assert 5000 / 3 < c < 5000 / 3 + 100
    with pytest.raises(ValueError):
        P.required_servers(1, 1, 1, 1.5)


# ---------------------------------------------------------------------------------------------
# Little's law on a simulated M/M/1 queue; saturation and staffing


def mm1_log(days: int = 150, lam_per_min: float = 0.1, mean_service: float = 5.0, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        base = pd.Timestamp("2025-01-06") + pd.Timedelta(days=d)
        t, free = 9 * 60.0, 0.0
        while True:
            t += rng.exponential(1 / lam_per_min)
            if t >= 17 * 60:
                break
            start = max(t, free)
            service = rng.exponential(mean_service)
            free = start + service
            rows.append((base, t, start, free))
    base, iss, start, fin = map(np.array, zip(*rows))
    to_ts = lambda b, m: pd.to_datetime(b) + pd.to_timedelta(np.round(m * 60_000_000).astype(np.int64), unit="us")  # noqa: E731
    df = pd.DataFrame({"branch_id": "B09", "business_type": "deposit", "counter_id": "B09-C01",
                       "issued_at": to_ts(base, iss), "called_at": to_ts(base, start),
                       "started_at": to_ts(base, start), "finished_at": to_ts(base, fin), "first_pass": True})
    for c in ("issued_at", "called_at", "started_at", "finished_at"):
        df[c] = df[c].astype("datetime64[us]")
    return df


def test_littles_law_mm1(study):
    df = mm1_log()
    ll = P.littles_law(df, study).iloc[0]
    # L = lambda W holds on consistent data; the small negative gap is waiting after closing time (not sampled)
    assert -0.05 < ll.relative_discrepancy <= 0.0
    assert ll.arrival_rate_per_hour == pytest.approx(6.0, rel=0.05)
    assert ll.L_observed == pytest.approx(0.5, rel=0.25)  # M/M/1: Lq = rho^2 / (1 - rho) = 0.5
    # a clock error (called before issued on 10 % of tickets) shows up as a discrepancy
    bad = df.copy()
    idx = bad.sample(frac=0.1, random_state=1).index
    bad.loc[idx, "called_at"] = bad.loc[idx, "issued_at"] - pd.Timedelta(minutes=30)
    bad = bad.drop(columns=[], errors="ignore")
    assert abs(P.littles_law(bad, study).iloc[0].relative_discrepancy) > 0.2


def test_saturation_and_staffing(study):
    df = mm1_log(days=30)
    sat = P.saturation(df, study)
    assert set(sat.hour) == set(range(9, 17))
    # offered load = sum of handling minutes / (60 x open days); capacity = 4 counters (B09)
    d = df.assign(h=df.issued_at.dt.hour, hm=(df.finished_at - df.started_at).dt.total_seconds() / 60)
    ref = d.groupby("h")["hm"].sum() / (60 * d.issued_at.dt.date.nunique())
    np.testing.assert_allclose(sat.set_index("hour")["offered_load"].sort_index(), ref.sort_index(), rtol=1e-12)
    np.testing.assert_allclose(sat["saturation"], sat["offered_load"] / 4, rtol=1e-12)
    assert (sat["counters_used"] == 1).all()
    stf = P.staffing(df, study)
    for _, r in stf.iterrows():
        assert r.counters_needed == P.required_servers(r.arrivals_per_hour, 60 / r.mean_handling_minutes, 10 / 60, 0.8)
        assert r.difference == r.counters_needed - 1
        assert isinstance(r.recommendation, str) and r.recommendation


# ---------------------------------------------------------------------------------------------
# Interrupted time series


def test_its_matches_r_sandwich():
    w = pd.read_csv(DATA / "its_weekly.csv")
    r = P.interrupted_time_series(w, dt.date(2025, 4, 1))
    # Rscript tests/reference/process_its.R: lm(value ~ t + post + tpost) + NeweyWest(lag=2, prewhite=FALSE, adjust=TRUE)
    assert r.maxlags == 2 and r.n_pre + r.n_post == 25
    p = r.params.set_index("term")
    np.testing.assert_allclose(p["estimate"], [5.8767747253, 0.0348554945, -1.5727542125, -0.0193610889], atol=1e-8)
    np.testing.assert_allclose(p["se"], [0.1491988744, 0.0242101356, 0.3142055843, 0.0234878695], atol=1e-8)


def test_its_recovers_synthetic_level_drop():
    rng = np.random.default_rng(2)
    weeks = [dt.date(2025, 1, 6) + dt.timedelta(days=7 * i) for i in range(30)]
    post = np.array([wk >= dt.date(2025, 4, 7) for wk in weeks])
    y = 8.0 + 0.01 * np.arange(30) - 2.0 * post + rng.normal(0, 0.2, 30)
    r = P.interrupted_time_series(pd.DataFrame({"week": weeks, "value": y}), "2025-04-07")
    assert abs(r.level_change + 2.0) < 3 * r.level_se and r.level_p < 0.001
    assert abs(r.slope_change) < 3 * r.slope_se + 0.05
    with pytest.raises(P.ProcessDataError, match="at least"):
        P.interrupted_time_series(pd.DataFrame({"week": weeks[:3], "value": y[:3]}), "2025-01-13")


# ---------------------------------------------------------------------------------------------
# The large-log generator and the chapter on it


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory, study):
    d = tmp_path_factory.mktemp("sample")
    for i, q in enumerate(("2025Q1", "2025Q2")):
        write_process_log(study, d, q, 150_000, seed=i, chunk_rows=60_000, progress=False)
    return d


def test_sample_log_files_and_schema(sample_dir, study):
    parts = sorted((sample_dir / "processed" / "2025Q1" / "process_times").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    t = pq.read_table(parts[0])
    assert t.schema.names == SCHEMA.names
    assert t.schema.field("issued_at").type == SCHEMA.field("issued_at").type
    df = pq.read_table(sample_dir / "processed" / "2025Q1" / "process_times").to_pandas()
    assert len(df) == 150_000 and df.ticket_pid.is_unique
    assert set(df.branch_id) <= set(study.branch_ids) and set(df.business_type) <= set(study.business_type_ids)
    assert df.issued_at.min() >= pd.Timestamp("2025-01-01") and df.issued_at.max() < pd.Timestamp("2025-04-01")
    oh = study.service_level.opening_hours
    assert df.issued_at.dt.hour.between(oh.open, oh.close - 1).all()
    assert (df.issued_at.dt.day_of_week < 6).all()
    assert df.issued_at.is_monotonic_increasing
    np.testing.assert_allclose(df.waiting_minutes, (df.called_at - df.issued_at).dt.total_seconds() / 60)
    np.testing.assert_allclose(df.cycle_minutes, (df.finished_at - df.issued_at).dt.total_seconds() / 60)
    assert (df.started_at >= df.called_at).all()
    assert df.first_pass.mean() == pytest.approx(0.82, abs=0.01)
    hm = df.groupby("business_type").handling_minutes.mean()
    assert hm["account_opening"] == pytest.approx(25, rel=0.03) and hm["loan_enquiry"] == pytest.approx(9, rel=0.03)
    assert df.customer_pid.str.fullmatch(r"[0-9a-f]{20}").all()
    # counters belong to their branch
    assert (df.counter_id.str[:3] == df.branch_id).all()


def test_sample_log_is_reproducible(tmp_path, study):
    a = write_process_log(study, tmp_path / "a", "2025Q2", 5000, seed=7, progress=False)
    b = write_process_log(study, tmp_path / "b", "2025Q2", 5000, seed=7, chunk_rows=5000, progress=False, workers=2)
    assert pq.read_table(a).equals(pq.read_table(b))


def test_its_recovers_sample_pilot_effect(sample_dir, study):
    its = P.its_by_measure(sample_dir / "processed", study).set_index(["metric", "group"])
    pilot = its.loc[("waiting_minutes", "pilot")]
    control = its.loc[("waiting_minutes", "control")]
    assert pilot.relative_level_change == pytest.approx(-0.20, abs=0.04)
    assert pilot.level_p < 0.001
    assert abs(control.relative_level_change) < 0.04


def test_process_chapter_on_sample(sample_dir, study):
    out = P.process_chapter(sample_dir / "processed", study, threads=2)
    assert {"by_business_type", "by_branch_id", "by_channel", "by_hour", "by_week", "saturation", "staffing",
            "littles_law", "its"} <= set(out)
    bt = out["by_business_type"]
    assert bt["n"].sum() == 300_000
    assert (out["littles_law"]["relative_discrepancy"].abs() < 0.05).all()
    sql = P.summarise(sample_dir / "processed", by="week", engine="sql")
    assert_same(out["by_week"], sql, ("week",))


# ---------------------------------------------------------------------------------------------
# The streaming engine (one scan for summaries and the branch x date x hour cube) against the slow,
# obvious computations and against the SQL engine


def slow_cube(df: pd.DataFrame, target: float = 10.0, open_h: int = 9, close_h: int = 17) -> pd.DataFrame:
    """Loop over branch x date x hour cells and over tickets; Little's grid by enumerating the minutes."""
    d = df.copy()
    d["date"] = d["issued_at"].dt.normalize()
    d["hour"] = d["issued_at"].dt.hour
    rows = []
    for (b, day, h), g in d.groupby(["branch_id", "date", "hour"], sort=True):
        grid = 0
        for iss, cal in zip(g["issued_at"], g["called_at"]):
            if pd.isna(cal):
                continue
            im = (iss - iss.normalize()).total_seconds() / 60
            cm = close_h * 60 if cal.normalize() > iss.normalize() else (cal - cal.normalize()).total_seconds() / 60
            grid += sum(1 for m in range(open_h * 60, close_h * 60) if im <= m < cm)
        fp = g["first_pass"].dropna().astype(float)
        rows.append({"branch_id": b, "date": day, "hour": h, "tickets": len(g),
                     "handling_sum": g["handling_minutes"].sum(min_count=1), "handling_n": g["handling_minutes"].notna().sum(),
                     "waiting_sum": g["waiting_minutes"].sum(min_count=1), "waiting_n": g["waiting_minutes"].notna().sum(),
                     "cycle_sum": g["cycle_minutes"].sum(min_count=1), "cycle_n": g["cycle_minutes"].notna().sum(),
                     "within_sl": float((g["waiting_minutes"] <= target).sum()), "first_pass_n": len(fp),
                     "first_pass_sum": fp.sum() if len(fp) else np.nan,
                     "counters_used": g["counter_id"].dropna().nunique(), "littles_grid": float(grid)})
    return pd.DataFrame(rows)


def assert_same_cube(ours: pd.DataFrame, ref: pd.DataFrame) -> None:
    ours = ours.sort_values(["branch_id", "date", "hour"]).reset_index(drop=True)
    ref = ref.sort_values(["branch_id", "date", "hour"]).reset_index(drop=True)
    assert list(ours["branch_id"]) == list(ref["branch_id"])
    assert (pd.to_datetime(ours["date"]).to_numpy() == pd.to_datetime(ref["date"]).to_numpy()).all()
    assert (ours["hour"].to_numpy() == ref["hour"].to_numpy()).all()
    ints = ["tickets", "handling_n", "waiting_n", "cycle_n", "first_pass_n", "counters_used"]
    for c in ints:
        assert (ours[c].to_numpy() == ref[c].to_numpy()).all(), c
    floats = ["handling_sum", "waiting_sum", "cycle_sum", "within_sl", "first_pass_sum", "littles_grid"]
    np.testing.assert_allclose(ours[floats].to_numpy(float), ref[floats].to_numpy(float), rtol=1e-10, equal_nan=True)


def messy_log(n: int = 2500, seed: int = 5) -> pd.DataFrame:
    """make_log with NULL measures, NULL first_pass and counters, calls after closing and on the next day."""
    df = make_log(n, seed=seed)
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, 60, replace=False)
    df.loc[idx[:20], "called_at"] = pd.NaT
    df.loc[idx[20:30], "called_at"] = df.loc[idx[20:30], "issued_at"] + pd.Timedelta(hours=20)
    df["first_pass"] = df["first_pass"].astype("boolean")
    df.loc[idx[30:40], "first_pass"] = pd.NA
    df.loc[idx[40:50], "counter_id"] = None
    df["waiting_minutes"] = (df["called_at"] - df["issued_at"]).dt.total_seconds() / 60.0
    return df


@pytest.mark.parametrize("log_maker", [make_log, messy_log])
def test_cube_matches_slow_loop_and_sql(study, log_maker):
    df = log_maker()
    ours = P.branch_hour_cube(df, study)
    assert_same_cube(ours, slow_cube(df))
    assert_same_cube(ours, P.branch_hour_cube(df, study, engine="sql"))
    assert list(ours.columns) == list(P.branch_hour_cube(df, study, engine="sql").columns)


def test_cube_unknown_branch_falls_back(study):
    df = make_log(600, seed=8)
    df.loc[:5, "branch_id"] = "X99"
    assert_same_cube(P.branch_hour_cube(df, study), slow_cube(df))


@pytest.mark.parametrize("by", [("business_type",), ("week",), ("branch_id", "hour"), ("channel",)])
def test_many_small_batches_and_threads(small, by):
    # batches of 128 rows, counted by two threads into separate accumulators and summed
    res = P._scan(P.open_log(small), [by], 10.0, strict=True, study=None, batch_rows=128, workers=2)
    assert_same(res.summaries[0], slow_summary(small, by), by)


def test_messy_summaries(study):
    df = messy_log()
    for by in [("business_type",), ("hour",), ("channel", "week")]:
        assert_same(P.summarise(df, by=by, engine="histogram"), slow_summary(df, by), by)


def test_process_chapter_equals_sql_engine(sample_dir, study):
    out = P.process_chapter(sample_dir / "processed", study, threads=2)
    cube = P.branch_hour_cube(sample_dir / "processed", study, engine="sql")
    for name, fn in (("saturation", P.saturation), ("staffing", P.staffing), ("littles_law", P.littles_law),
                     ("weekly", P.weekly_series)):
        ref = fn(sample_dir / "processed", study, cube=cube)
        pd.testing.assert_frame_equal(out[name].reset_index(drop=True), ref.reset_index(drop=True),
                                      check_dtype=False, rtol=1e-10)
    for by in P.CHAPTER_GROUPINGS:
        assert_same(out[f"by_{by[0]}"].drop(columns=["standard_minutes", "deviation_pct", "ideal_cycle_minutes",
                                                     "improvement_potential"], errors="ignore"),
                    P.summarise(sample_dir / "processed", by=by, engine="sql"), by)


def test_ols_hac_equals_newey_west_by_hand():
    rng = np.random.default_rng(4)
    for lags in (0, 1, 2, 5):
        X = np.column_stack([np.ones(40), np.arange(40.0), rng.random(40) > 0.5, rng.normal(size=40)])
        y = X @ [1.0, 0.1, -0.5, 0.3] + rng.normal(size=40)
        # Newey & West (1987), Bartlett kernel, n/(n-k) (= sandwich::NeweyWest(lag = L, prewhite = FALSE, adjust = TRUE))
        n, k = X.shape
        xtx_inv = np.linalg.inv(X.T @ X)
        beta = xtx_inv @ X.T @ y
        g = X * (y - X @ beta)[:, None]
        s = g.T @ g
        for lag in range(1, lags + 1):
            c = g[lag:].T @ g[:-lag]
            s += (1.0 - lag / (lags + 1.0)) * (c + c.T)
        se_ref = np.sqrt(np.diag(xtx_inv @ s @ xtx_inv * n / (n - k)))
        b, se, p = P.ols_hac(y, X, lags)
        np.testing.assert_allclose(b, beta, rtol=1e-10)
        np.testing.assert_allclose(se, se_ref, rtol=1e-10)
        np.testing.assert_allclose(p, [math.erfc(abs(z) / math.sqrt(2)) for z in beta / se_ref], rtol=1e-8, atol=1e-15)


def test_its_by_measure_uses_each_measures_own_metrics_and_never_raises(sample_dir, study):
    from study.data.config import Measure

    loan = Measure(id="loan", name="Loan desk", start="2025-04-01", pilot=["B09", "B10"], metrics=["handling_minutes"])
    planned = Measure(id="later", name="Later", start="2025-08-04", pilot=["B01"], control=["B02"],
                      metrics=["waiting_minutes"])
    early = Measure(id="early", name="Early", start="2024-11-04", pilot=["B03"], control=["B04"],
                    metrics=["first_pass_yield"])
    survey_only = Measure(id="survey", name="Survey", start="2025-04-01", pilot=["B05"], metrics=["nps"])
    s = study.model_copy(update={"measures": [loan, planned, early, survey_only]})
    its = P.its_by_measure(sample_dir / "processed", s)
    assert list(its.columns) == P.ITS_COLUMNS
    lo = its[its["measure"] == "loan"]
    # the loan measure's ITS is on handling time, pilot branches only (no control branches)
    assert lo["metric"].tolist() == ["handling_minutes"] and lo["group"].tolist() == ["pilot"]
    assert lo["status"].eq("fitted").all() and lo["n_pre"].iloc[0] >= 3
    for mid in ("later", "early"):
        rows = its[its["measure"] == mid]
        assert rows["status"].eq("not fitted").all() and rows["note"].str.contains("at least 3 weeks before").all()
    so = its[its["measure"] == "survey"]
    assert so["metric"].isna().all() and so["note"].iloc[0] == "the measure lists no queue-log metric"
