"""Shared fixtures: the project's study definition and a small, valid, hand-made quarter.

The small quarter is built here, independently of ``study.sample``, so validation tests do not
depend on the generator they partly check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.data.config import DEFAULT_STUDY_FILE, load_study

ROOT = Path(__file__).resolve().parents[1]
QUARTER = "2025Q1"


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch):
    # A fixed key so processed outputs are reproducible within the tests.
    monkeypatch.setenv("STUDY_PSEUDONYM_KEY", "test-key-not-secret")


@pytest.fixture(scope="session")
def study():
    return load_study(DEFAULT_STUDY_FILE)


@pytest.fixture(scope="session")
def study_file():
    return DEFAULT_STUDY_FILE


def small_survey(study, n: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = {
        "respondent_id": [f"R25Q1-{i:06d}" for i in range(1, n + 1)],
        "customer_id": [f"{rng.integers(10**11, 10**12)}" for _ in range(n)],
        "phone": [f"138{rng.integers(10**7, 10**8)}" for _ in range(n)],
        "branch_id": rng.choice(study.branch_ids, n),
        "segment": rng.choice([s.id for s in study.segments], n),
        "channel": rng.choice([c.id for c in study.channels], n),
        "interview_date": pd.to_datetime("2025-01-06") + pd.to_timedelta(rng.integers(0, 80, n), unit="D"),
    }
    df = pd.DataFrame(rows)
    df["interview_date"] = df["interview_date"].dt.strftime("%Y-%m-%d")
    base = rng.integers(2, 5, n)
    for item in study.item_ids:
        df[item] = np.clip(base + rng.integers(-1, 2, n), 1, 5)
    df[study.item_ids[0]] = np.where(df[study.item_ids[1]] == df[study.item_ids[2]], 5 - df[study.item_ids[1]] % 2, df[study.item_ids[0]])
    df["overall_satisfaction"] = np.clip(base + rng.integers(0, 2, n), 1, 5)
    df["recommend"] = np.clip(base * 2 + rng.integers(0, 3, n), 0, 10)
    df["complaint"] = (rng.random(n) < 0.1).astype(int)
    df["comment"] = np.where(rng.random(n) < 0.3, "排队时间太长，希望改进", "")
    # make sure no row is accidentally a straight-liner
    items = study.item_ids
    same = df[items].nunique(axis=1) == 1
    df.loc[same, items[0]] = np.where(df.loc[same, items[1]] == 5, 4, 5)
    return df


def small_process(study, n: int = 30, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    issued = pd.Timestamp("2025-01-06 09:00") + pd.to_timedelta(rng.integers(0, 60 * 24 * 70, n), unit="min")
    wait = rng.uniform(0, 30, n)
    walk = rng.uniform(0, 2, n)
    handle = rng.uniform(2, 40, n)
    called = issued + pd.to_timedelta(wait, unit="min")
    started = called + pd.to_timedelta(walk, unit="min")
    finished = started + pd.to_timedelta(handle, unit="min")
    fmt = "%Y-%m-%d %H:%M:%S"
    branch = rng.choice(study.branch_ids, n)
    return pd.DataFrame({
        "ticket_id": [f"T25Q1-{i:07d}" for i in range(1, n + 1)],
        "branch_id": branch,
        "business_type": rng.choice(study.business_type_ids, n),
        "counter_id": [f"{b}-C{rng.integers(1, 4):02d}" for b in branch],
        "channel": rng.choice([c.id for c in study.ticket_channels], n),
        "customer_id": [f"{rng.integers(10**11, 10**12)}" for _ in range(n)],
        "issued_at": issued.strftime(fmt), "called_at": called.strftime(fmt),
        "started_at": started.strftime(fmt), "finished_at": finished.strftime(fmt),
        "first_pass": (rng.random(n) < 0.8).astype(int),
    })


def small_benchmark(study) -> pd.DataFrame:
    values = {study.benchmark.our_bank: [5.2, 8.3, 92, 12], "Bank A": [4.8, 8.1, 95, 15],
              "Bank B": [6.1, 7.9, 88, 10], "Bank C": [5.0, 8.5, 90, 14]}
    metrics = [m.id for m in study.benchmark.metrics]
    return pd.DataFrame([{"bank": b, "metric": m, "value": v} for b, vs in values.items() for m, v in zip(metrics, vs)])


@pytest.fixture
def small_quarter(tmp_path, study):
    """A data dir with one valid quarter (raw CSVs) and the frames it was written from."""
    raw = tmp_path / "data" / "raw" / QUARTER
    raw.mkdir(parents=True)
    frames = {"survey": small_survey(study), "process_times": small_process(study), "benchmark": small_benchmark(study)}
    for name, df in frames.items():
        df.to_csv(raw / f"{name}.csv", index=False, encoding="utf-8")
    return tmp_path / "data", frames


def unmarked(html: str) -> str:
    """A rendered report's HTML without the non-breaking marks of study.report.typeset (``<span class="nb">81.4 %</span>``
    -> ``81.4 %``), for tests that look for a phrase in the HTML."""
    import re

    return re.sub(r'<span class="nb">([^<]*)</span>', r"\1", html)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def venv_python() -> str:
    """The interpreter running the tests (the project's .venv under `make test`)."""
    import sys

    return sys.executable


def env_for_subprocess() -> dict:
    env = dict(os.environ)
    env["STUDY_PSEUDONYM_KEY"] = "test-key-not-secret"
    return env


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory, study):
    """Both quarters of the shipped sample, validated and prepared once into a scratch data folder."""
    import json

    from study.data import validate

    data_dir = tmp_path_factory.mktemp("prepared-sample")
    shutil.copytree(ROOT / "data" / "raw", data_dir / "raw")
    truth = json.loads((data_dir / "raw" / "truth.json").read_text(encoding="utf-8"))
    previous = os.environ.get("STUDY_PSEUDONYM_KEY")
    os.environ["STUDY_PSEUDONYM_KEY"] = "test-key-not-secret"
    try:
        for q in truth["quarters"]:
            validate.prepare_quarter(study, DEFAULT_STUDY_FILE, data_dir, q)
    finally:
        if previous is None:
            os.environ.pop("STUDY_PSEUDONYM_KEY", None)
        else:
            os.environ["STUDY_PSEUDONYM_KEY"] = previous
    return data_dir, truth


@pytest.fixture(scope="session")
def sample_frames(prepared_sample):
    """The prepared sample's processed survey and process times (None where a quarter has no queue log), per quarter."""
    data_dir, truth = prepared_sample

    def read(q, d):
        path = data_dir / "processed" / q / f"{d}.parquet"
        return pd.read_parquet(path) if path.exists() else None

    return {q: {d: read(q, d) for d in ("survey", "process_times")} for q in truth["quarters"]}
