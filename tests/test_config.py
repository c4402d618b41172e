"""The study definition: the shipped one is valid; each kind of mistake is reported with its key path."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from study.data.config import DEFAULT_STUDY_FILE, Study, StudyDefinitionError, load_study, quarter_bounds, quarter_dirs


@pytest.fixture(scope="module")
def raw_definition():
    return yaml.safe_load(DEFAULT_STUDY_FILE.read_text(encoding="utf-8"))


def broken(tmp_path, raw, mutate):
    d = copy.deepcopy(raw)
    mutate(d)
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StudyDefinitionError) as info:
        load_study(path)
    return str(info.value)


def test_shipped_definition_is_valid(study):
    assert isinstance(study, Study)
    assert len(study.dimension_ids) == 10
    assert all(2 <= len(items) <= 4 for items in study.scales.values())
    assert set(study.reverse_items) <= set(study.item_ids)
    assert abs(sum(s.weight for s in study.sqi) - 1) < 1e-12
    groups = study.branch_groups(study.measures[0].id)
    assert set(groups.values()) == {"pilot", "control", "other"}


def test_unknown_key(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["questionnaire"].update({"scael": {"min": 1, "max": 5}}))
    assert "questionnaire.scael: unknown key" in msg


def test_weights_must_sum_to_one(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["sqi"][0].update({"weight": 0.5}))
    assert "sqi[*].weight" in msg and "sum to 1.3" in msg and "must sum to 1" in msg


def test_item_in_no_dimension(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["questionnaire"]["items"][3].update({"dimension": "speed"}))
    assert "questionnaire.items[3].dimension" in msg and "'speed'" in msg and "expected one of" in msg


def test_reversed_range(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["questionnaire"]["scale"].update({"min": 5, "max": 1}))
    assert "questionnaire.scale" in msg and "must be smaller than max" in msg
    msg = broken(tmp_path, raw_definition, lambda d: d["sqi"][1].update({"min": 30, "max": 5}))
    assert "sqi[1]" in msg and "reversed" in msg


def test_measure_names_unknown_branch_and_metric(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["measures"][0]["pilot"].append("B42"))
    assert "measures[0].pilot[4]" in msg and "'B42'" in msg
    msg = broken(tmp_path, raw_definition, lambda d: d["measures"][0]["metrics"].append("happiness"))
    assert "measures[0].metrics" in msg and "unknown metric 'happiness'" in msg


def test_branch_in_both_groups(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["measures"][0]["control"].append("B01"))
    assert "measures[0]" in msg and "both pilot and control" in msg


def test_missing_key_and_bad_type(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d.pop("branches"))
    assert "branches: required key is missing" in msg
    msg = broken(tmp_path, raw_definition, lambda d: d["branches"][0].update({"counters": "many"}))
    assert "branches[0].counters" in msg


def test_duplicate_ids(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["branches"].append(dict(d["branches"][0])))
    assert "branches[12].id" in msg and "appears twice" in msg


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "study.yml"
    path.write_text("name: x\nquestionnaire: [unclosed\n", encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match="not valid YAML at line"):
        load_study(path)


def test_missing_file(tmp_path):
    with pytest.raises(StudyDefinitionError, match="not found"):
        load_study(tmp_path / "nope.yml")


def test_quarters(tmp_path):
    assert quarter_bounds("2025Q1")[0].isoformat() == "2025-01-01"
    assert quarter_bounds("2025Q4")[1].isoformat() == "2025-12-31"
    assert quarter_bounds("2024Q1")[1].isoformat() == "2024-03-31"
    for q in ("2025Q2", "2025Q1", "notes", "2025Q5"):
        (tmp_path / "raw" / q).mkdir(parents=True)
    assert quarter_dirs(tmp_path) == ["2025Q1", "2025Q2"]
    with pytest.raises(ValueError):
        quarter_bounds("2025-Q1")


# --- any well-formed study: optional sections --------------------------------------------------

def _survey_only(raw):
    d = copy.deepcopy(raw)
    for key in ("segments", "channels", "ticket_channels", "business_types", "service_level", "sqi", "targets",
                "measures", "benchmark", "service_requests", "channel_coverage", "information_accuracy"):
        d.pop(key)
    d["questionnaire"]["outcomes"].pop("recommend")
    d["questionnaire"]["outcomes"].pop("complaint")
    return d


def test_survey_only_study_is_valid(tmp_path, raw_definition):
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(_survey_only(raw_definition), allow_unicode=True), encoding="utf-8")
    s = load_study(path)
    assert not s.has_process and not s.has_benchmark
    assert s.benchmark is None and s.service_level is None and s.questionnaire.outcomes.recommend is None
    assert s.segments == [] and s.sqi == [] and s.measures == []
    assert [o.column for o in s.outcomes] == ["overall_satisfaction"]
    assert s.label("professionalism") == "Professional competence" and s.label("no_such_id") == "no_such_id"
    assert s.timezone == "Asia/Shanghai"


def test_shipped_study_has_every_source(study):
    assert study.has_process and study.has_benchmark


def test_metric_needs_its_outcome_or_source(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d["questionnaire"]["outcomes"].pop("recommend"))
    assert "measures[0].metrics[5]: metric 'nps' needs the recommend outcome" in msg
    msg = broken(tmp_path, raw_definition, lambda d: d["questionnaire"]["outcomes"].pop("complaint"))
    assert "targets[2].metric: metric 'complaint_rate' needs the complaint outcome" in msg

    def no_service_level(d):
        d.pop("service_level")
        d["sqi"] = [s for s in d["sqi"] if s["source"] != "process"]
        d["targets"] = [t for t in d["targets"] if t["id"] not in ("service_time", "waiting_reduction")]
        d["sqi"][0]["weight"] = 0.75
    msg = broken(tmp_path, raw_definition, no_service_level)
    assert "measures[0].metrics[0]: metric 'waiting_minutes' comes from process times" in msg
    assert "missing: service_level" in msg


def test_weights_checked_only_for_what_is_present(tmp_path, raw_definition):
    d = _survey_only(raw_definition)
    d["sqi"] = [{"id": "csat_mean_0_100", "label": "CSAT", "source": "survey", "weight": 0.5, "direction": "higher",
                 "min": 0, "max": 100}]
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match=r"sqi\[\*\].weight: weights sum to 0.5"):
        load_study(path)


def test_timezone_must_be_an_iana_zone(tmp_path, raw_definition):
    msg = broken(tmp_path, raw_definition, lambda d: d.update({"timezone": "Mars/Olympus"}))
    assert "timezone" in msg and "'Mars/Olympus' is not an IANA time zone" in msg


def test_limits_are_configurable(tmp_path, raw_definition, monkeypatch):
    from study.data.config import effective_limits

    d = copy.deepcopy(raw_definition)
    d["limits"] = {"max_decompressed_bytes": 1000, "max_spreadsheet_columns": 50}
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    s = load_study(path)
    assert effective_limits(s).max_decompressed_bytes == 1000 and s.limits.max_spreadsheet_columns == 50
    monkeypatch.setenv("STUDY_MAX_DECOMPRESSED_BYTES", "2048")
    assert effective_limits(s).max_decompressed_bytes == 2048
    monkeypatch.setenv("STUDY_MAX_DECOMPRESSED_BYTES", "lots")
    with pytest.raises(StudyDefinitionError, match="STUDY_MAX_DECOMPRESSED_BYTES='lots'"):
        effective_limits(s)


def test_satisfaction_label_uses_the_study_scale(tmp_path, raw_definition, study):
    assert study.label("overall_satisfaction") == "Overall satisfaction (1-5 mean)"
    d = copy.deepcopy(raw_definition)
    d["questionnaire"]["outcomes"]["overall_satisfaction"]["scale"] = {"min": 0, "max": 10}
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    assert load_study(path).label("overall_satisfaction") == "Overall satisfaction (0-10 mean)"


@pytest.mark.parametrize("where, value, says", [
    (("branches", 0, "id"), 'B1"><img src=x onerror=alert(1)>', "is not allowed"),
    (("branches", 0, "id"), "../../x", "is not allowed"),
    (("questionnaire", "dimensions", 0, "id"), "{0.__class__}", "is not allowed"),
    (("branches", 0, "name"), "Central\u202eevil", "U+202E"),
    (("name",), "Study\x00", "U+0000"),
    (("branches", 0, "name"), "x" * 5000, "characters long"),
])
def test_ids_and_text_are_checked(tmp_path, raw_definition, where, value, says):
    """Ids are safe tokens (any script's letters and digits, '_', '.', '-'); text carries no control or
    bidirectional-override characters and no megabyte labels (issue 11)."""
    import copy

    d = copy.deepcopy(raw_definition)
    node = d
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match=re.escape(says)):
        load_study(path)


def test_chinese_and_numeric_ids_are_allowed():
    from study.data.config import ID_PATTERN

    for ok in ("B01", "110021", "网点01", "pro1", "a.b-c_d"):
        assert ID_PATTERN.match(ok), ok
    for bad in ("_x", "a b", "a/b", "<a>", "", "x" * 65):
        assert not ID_PATTERN.match(bad), bad


def test_nps_needs_recommend_on_0_10(tmp_path, raw_definition):
    """The registry defines an NPS only for a 0-10 recommend question; naming it otherwise is a key-path error."""
    d = copy.deepcopy(raw_definition)
    d["questionnaire"]["outcomes"]["recommend"]["scale"] = {"min": 1, "max": 7}
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match=r"needs recommend on the 0-10 scale \(it is 1-7\)"):
        load_study(path)


def test_benchmark_names_and_units_have_chinese_forms(tmp_path, raw_definition, small_quarter, capsys):
    """The competitors ("Bank A"), our bank and a benchmark unit such as "stars (1-5)" stayed English in the Chinese
    report: study.yml gives their Chinese forms (benchmark.our_bank_zh, banks_zh, metrics[].unit_zh), and validate warns
    for each one missing, the banks named in the benchmark file included."""
    from study import cli, i18n

    study = load_study(DEFAULT_STUDY_FILE)
    with i18n.use("zh"):
        assert study.bank_name("Our bank") == "本行" and study.bank_name("Bank B") == "B银行"
        assert study.bank_name("Bank Z") == "Bank Z（英文，未译）"
        m = {x.id: x for x in study.benchmark.metrics}
        assert study.benchmark_unit(m["experience_score"]) == "分（1–10分制）" and study.benchmark_unit(m["handling_time"]) == "分钟"
    assert study.bank_name("Bank B") == "Bank B"
    d = copy.deepcopy(raw_definition)
    del d["benchmark"]["our_bank_zh"], d["benchmark"]["banks_zh"]
    d["benchmark"]["metrics"][1].update(unit="stars (1-5)", unit_zh="")
    path = tmp_path / "study.yml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    bare = load_study(path)
    assert {"benchmark.our_bank_zh", "benchmark.metrics[experience_score].unit_zh"} <= set(bare.missing_translations())
    assert "benchmark.metrics[handling_time].unit_zh" not in bare.missing_translations()   # "min" is a known unit word
    data_dir, _ = small_quarter
    assert cli.main(["validate", "--quarter", "2025Q1", "--data-dir", str(data_dir), "--study", str(path)]) == 0
    out = capsys.readouterr().out
    for key in ("benchmark.our_bank_zh", "benchmark.metrics[experience_score].unit_zh", "benchmark.banks_zh[Bank A]",
                "benchmark.banks_zh[Bank B]", "benchmark.banks_zh[Bank C]"):
        assert f"    {key}\n" in out, key
