"""The shipped sample study: byte-identical regeneration, and its calibration after validation.

The sample is what `make report` renders and what the analysis tests recover truths from, so its
counts and calibration against the source digest are checked here on the committed files.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from study import sample
from tests.conftest import ROOT

RAW = ROOT / "data" / "raw"
FILES = ["survey.csv", "process_times.csv.gz", "benchmark.csv", "service_requests.csv.gz"]


@pytest.fixture(scope="module")
def truth():
    return json.loads((RAW / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prepared(prepared_sample):
    """Both sample quarters prepared (the session's shared copy) and their manifests."""
    data_dir, truth = prepared_sample
    manifests = {q: json.loads((data_dir / "processed" / q / "manifest.json").read_text(encoding="utf-8"))
                 for q in truth["quarters"]}
    return data_dir, manifests


def test_regenerating_the_sample_gives_identical_bytes(tmp_path, study):
    sample.write_sample(study, tmp_path)
    written = sorted(p.relative_to(tmp_path / "raw") for p in (tmp_path / "raw").rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(RAW) for p in RAW.rglob("*") if p.is_file())
    assert written == shipped
    for rel in shipped:
        assert (tmp_path / "raw" / rel).read_bytes() == (RAW / rel).read_bytes(), f"{rel} differs from the generator's output"


def test_sample_is_small_and_in_the_documented_formats(truth):
    total = sum(p.stat().st_size for p in RAW.rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024
    assert truth["quarters"] == list(sample.QUARTERS) and len(truth["quarters"]) == 8
    for q in truth["quarters"]:
        # the queue system's export (and the benchmark) start with QUEUE_LOG_FROM; earlier quarters: the survey
        files = FILES if q >= sample.QUEUE_LOG_FROM else ["survey.csv"]
        assert sorted(p.name for p in (RAW / q).iterdir()) == sorted(files)
    # the baseline survey is a GB18030 export, the follow-up UTF-8 with a byte-order mark
    q1 = (RAW / "2025Q1" / "survey.csv").read_bytes()
    q1.decode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        q1.decode("utf-8")
    assert (RAW / "2025Q2" / "survey.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_survey_counts_match_the_digest_and_the_truth(prepared, truth):
    _, results = prepared
    base = results["2025Q1"]["rows"]["survey"]
    assert (base["read"], base["kept"], base["rejected"]) == (800, 735, 65)   # digest: 800 issued, 735 valid
    for q, manifest in results.items():
        rows = manifest["rows"]["survey"]
        expected = truth["survey"][q]
        assert rows["read"] == expected["issued"] and rows["kept"] == expected["valid"]
        # one reason per invalid row, and exactly the reasons the generator planted
        assert rows["rejected_by_reason"] == expected["invalid_by_reason"]


def test_process_counts_match_the_truth(prepared, truth):
    _, results = prepared
    assert sorted(truth["process_times"]) == [q for q in truth["quarters"] if q >= sample.QUEUE_LOG_FROM]
    for q in truth["process_times"]:
        rows = results[q]["rows"]["process_times"]
        expected = truth["process_times"][q]
        assert rows["read"] == expected["tickets"] and rows["kept"] == expected["valid"]
        assert rows["rejected_by_reason"] == expected["invalid_by_reason"]
        assert 20_000 <= rows["kept"] <= 60_000


def test_no_direct_identifier_reaches_processed_data(prepared):
    data_dir, _ = prepared
    raw = pd.read_csv(RAW / "2025Q2" / "survey.csv", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    survey_bytes = (data_dir / "processed" / "2025Q2" / "survey.parquet").read_bytes()
    rejected = (data_dir / "processed" / "2025Q2" / "rejected_survey.csv").read_text(encoding="utf-8-sig")
    for phone, customer in zip(raw["phone"][:50], raw["customer_id"][:50]):
        assert phone.encode() not in survey_bytes and customer.encode() not in survey_bytes
        assert phone not in rejected and customer not in rejected
    comments = [c for c in raw["comment"] if c]
    assert comments, "the sample should carry free-text comments"
    assert all(c.encode() not in survey_bytes and c not in rejected for c in comments)
    processed = pd.read_parquet(data_dir / "processed" / "2025Q2" / "survey.parquet")
    assert not set(processed.columns) & {"respondent_id", "customer_id", "phone", "comment"}


def test_baseline_dimension_scores_sit_near_the_digest(prepared, study, truth):
    """The population is calibrated to the digest, so the design-based (weighted) estimates sit near it;
    the unweighted means over-represent the small, more satisfied branches (tests/test_design_sample.py)."""
    from study.stats import design

    data_dir, _ = prepared
    survey = pd.read_parquet(data_dir / "processed" / "2025Q1" / "survey.parquet")
    est = design.estimates(survey, study, "2025Q1")["estimate"]
    scores = est[study.dimension_ids]
    digest = pd.Series(truth["calibration"]["digest_dimension_scores_0_100"])
    assert (scores - digest).abs().max() < 3.0
    # the ordering of the digest (professional competence highest, retention lowest) survives
    assert scores.idxmax() == "professionalism" and scores.idxmin() == "retention"
    assert abs(est["csat_mean_0_100"] - truth["calibration"]["digest_csat_0_100"]) < 3.0
    # the population itself (truth.json) is within a point of the digest
    pop = pd.Series(truth["population"]["dimension_scores_0_100"])
    assert (pop - digest).abs().max() < 1.0


def test_process_times_follow_the_digest(prepared, study):
    data_dir, _ = prepared
    t = pd.read_parquet(data_dir / "processed" / "2025Q1" / "process_times.parquet")
    actual = t.groupby("business_type")["handling_minutes"].mean()
    for bt, digest_actual in {"account_opening": 25, "deposit": 18, "loan_enquiry": 9}.items():
        assert abs(actual[bt] - digest_actual) < 1.0
    assert 0.80 <= t["first_pass"].mean() <= 0.84
    cycle = t.loc[t["business_type"] == "info_verification", "cycle_minutes"].mean()
    assert abs(cycle - 48) < 4          # digest: customer-information verification cycle 48 min
    assert set(t["branch_id"]) == set(study.branch_ids)


def test_pilot_waiting_falls_and_control_stays(prepared, study, truth):
    data_dir, _ = prepared
    m = truth["measure"]
    before = pd.read_parquet(data_dir / "processed" / "2025Q1" / "process_times.parquet")
    after = pd.read_parquet(data_dir / "processed" / "2025Q2" / "process_times.parquet")

    def change(group):
        b = before.loc[before["branch_id"].isin(group), "waiting_minutes"].mean()
        a = after.loc[after["branch_id"].isin(group), "waiting_minutes"].mean()
        return a / b - 1

    assert -0.30 < change(m["pilot"]) < -0.10
    assert abs(change(m["control"])) < 0.08
    assert m["waiting_relative_change_pilot"] == pytest.approx(-0.20)


def test_population_truth_is_consistent(truth, study):
    pop = truth["population"]
    lmg = pop["lmg"]
    assert sum(lmg["importance"].values()) == pytest.approx(lmg["r2"], abs=1e-3)
    assert sum(lmg["share"].values()) == pytest.approx(1.0, abs=1e-3)
    # the largest true weight is the largest population importance
    weights = truth["driver_weights"]["weights"]
    assert max(weights, key=weights.get) == min(lmg["rank"], key=lmg["rank"].get)
    assert set(pop["alpha"]) == set(study.dimension_ids)
    assert all(0.5 < a < 0.95 for a in pop["alpha"].values())
