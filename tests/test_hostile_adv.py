"""Adversarial follow-ups to issue 11: disclosure through tables the first round did not cover."""

from __future__ import annotations

import dataclasses

import numpy as np

from study.data import io
from study.report import analysis, tables


def _ctx(prepared_sample, study, keep_b12: int):
    data_dir, _ = prepared_sample
    cur = io.load_quarter(data_dir, "2025Q2")
    s = cur.survey
    survey = s[(s["branch_id"] != "B12") | (s.groupby("branch_id").cumcount() < keep_b12)].reset_index(drop=True)
    cur = dataclasses.replace(cur, survey=survey)
    return analysis.Context(study=study, current=cur, baseline=io.load_quarter(data_dir, "2025Q1"), n_boot=49)


def test_sqi_per_branch_is_suppressed_with_the_branch(prepared_sample, study):
    """A branch of one respondent: its SQI (from its own csat, NPS and complaint rate, with the process
    figures printed beside it) would give the respondent's answers back; it is suppressed as the branch
    breakdown suppresses it, complementary suppressions included."""
    ctx = _ctx(prepared_sample, study, keep_b12=1)
    br = analysis.breakdown(ctx, "branch_id")
    hidden = set(br.loc[br["suppressed"], "by_branch_id"])
    assert "B12" in hidden and len(hidden) >= 2
    s = analysis.sqi_table(ctx)
    assert set(s.index[s["suppressed_current"].astype(bool)]) == hidden
    assert s.loc[list(hidden), "sqi_current"].isna().all()
    assert s.loc[list(hidden), "csat_mean_0_100_current"].isna().all()
    assert np.isfinite(float(s.loc["all", "sqi_current"]))
    shown = tables.branches(ctx, analysis.process(ctx)["by_branch_id"], s)
    labels = {study.label(b) for b in hidden}
    assert (shown.loc[shown["Branch"].isin(labels), "SQI (0-100)"] == "suppressed").all()
    assert not (shown.loc[~shown["Branch"].isin(labels), "SQI (0-100)"] == "suppressed").any()


def test_parquet_dictionary_bomb_is_refused_before_decoding(tmp_path, study):
    """One long string repeated is stored once in a Parquet dictionary page: the footer's sizes and the
    32-bytes-a-cell estimate both pass, but decoding would expand it row by row (a 10 KB file of 400
    rows × 8 MB took 6.5 GB). The decoded size is counted on the dictionary-encoded columns first."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from study.errors import DataFileError

    path = tmp_path / "benchmark.parquet"
    big = "x" * (1 << 20)
    pq.write_table(pa.table({"bank": pa.array([big] * 200).dictionary_encode(), "metric": ["m"] * 200,
                             "value": [1.0] * 200}), path, compression="zstd")
    assert path.stat().st_size < 50_000
    limits = study.limits.model_copy(update={"max_decompressed_bytes": 100 << 20})
    with pytest.raises(DataFileError, match=r"200 rows × 3 columns decode to more than 104,857,600 bytes once read"):
        io.read_raw(path, limits=limits)
    # the same file within the limit is read, with its text as text
    table = io.read_raw(path, limits=study.limits)
    assert table.frame["bank"].str.len().eq(1 << 20).all() and list(table.frame["metric"].unique()) == ["m"]
