"""The message catalogue (issue 14): coverage, lookups, and the Chinese number/date conventions."""

from __future__ import annotations

import datetime as dt

import pytest

from study import i18n, i18n_extract
from study.report import present as P


@pytest.fixture
def zh():
    with i18n.use("zh"):
        yield


def test_every_message_of_the_code_and_notebooks_has_a_chinese_translation():
    """Coverage 100 %: each msgid used in src/study and notebooks/ is translated, with the same {}
    fields and bold markup; every marked call passes one literal (else it cannot be looked up)."""
    problems = i18n_extract.check("zh")
    assert problems == [], "\n".join(problems[:40])
    assert len(i18n_extract.extract().messages) > 500


def test_the_extractor_flags_templates_it_cannot_look_up(tmp_path):
    src = tmp_path / "m.py"
    src.write_text('from study.report import present as P\nx = 3\nP.md(f"waited {x} min")\nP.md("a" + str(x))\n'
                   'P.Md("Plain English sentence.")\nP.md("ok {}", x)\nP.pmd("column", "Rate")\n', encoding="utf-8")
    ex = i18n_extract.extract(files=[src], notebooks=[])
    assert len(ex.problems) == 3
    assert set(ex.messages) == {(None, "ok {}"), ("column", "Rate")}


def test_check_catches_a_translation_with_other_fields(monkeypatch):
    monkeypatch.setattr(i18n_extract, "extract", lambda: i18n_extract.Extracted(
        {(None, "Waited {} min."): i18n_extract.Message(None, "Waited {} min.", locations=[("x.py", 1)])}, []))
    monkeypatch.setattr(i18n.catalogue, "__wrapped__", lambda lang: {(None, "Waited {} min."): "等候{}分钟，{}。"})
    assert any("fields" in p for p in i18n_extract.check("zh"))


def test_missing_translation_is_an_error_in_strict_mode(zh, monkeypatch):
    monkeypatch.setenv(i18n.STRICT_ENV, "1")
    with pytest.raises(i18n.MissingTranslation):
        i18n.gettext("A sentence nobody translated.")
    monkeypatch.setenv(i18n.STRICT_ENV, "0")
    assert i18n.gettext("A sentence nobody translated.") == "A sentence nobody translated."
    assert (None, "A sentence nobody translated.") in i18n.MISSING


def test_english_is_the_msgid_and_needs_no_catalogue():
    assert i18n.language() == "en"
    assert P.md("Act first on {}.", "**x**") == "Act first on &#42;&#42;x&#42;&#42;."
    assert i18n.quarter("2025Q2") == "2025Q2"
    assert i18n.date(dt.date(2025, 4, 1)) == "01 April 2025"


def test_md_fills_the_translated_template_with_escaped_values(zh):
    text = P.md("Focus next quarter's plan on {}.", "<b>x</b>")
    assert text.startswith("下季度计划重点关注") and "&lt;b&gt;" in text and "<b>" not in text


def test_plural_templates_have_one_chinese_form(zh):
    assert P.nmd("{} bank", "{} banks", 1, "1") == P.nmd("{} bank", "{} banks", 3, "1").replace("3", "1") == "1家银行"


def test_stored_english_reason_is_translated_with_its_values_localised(zh):
    # effects.measure_window stores English; tr finds the template and re-renders it in Chinese
    assert i18n.tr("started on 2025-05-06, inside 2025Q2", "reason") == "已于2025年5月6日开始，位于2025年第二季度之内"
    assert i18n.tr("2025Q1", "reason") == "2025年第一季度"


def test_chinese_numbers_dates_and_quarters_follow_cldr(zh):
    # R: none - CLDR zh_CN data through Babel: 2025年4月1日, 第二季度, percent pattern #,##0%
    assert i18n.quarter("2025Q2") == "2025年第二季度"
    assert i18n.quarter("2024Q4") == "2024年第四季度"
    assert i18n.date(dt.date(2025, 4, 1)) == "2025年4月1日"
    assert P.fmt_pct(735 / 800, 2) == "91.88%"
    assert P.fmt_pp(0.032) == "+3.2个百分点"
    assert P.fmt_num(12345.678, 1) == "12,345.7"
    assert P.fmt_num(-0.5) == "−0.50"
    # Chinese journals print the leading zero: p = 0.038, not p = .038
    assert P.fmt_p(0.038) == "p = 0.038" and P.fmt_p(0.0001) == "p <\u00a00.001"   # no-break space
    assert P.fmt_ci(0.1, 1.12) == "95%置信区间 [0.10, 1.12]"
    assert i18n.join_list(["甲", "乙", "丙"]) == "甲、乙和丙"


def test_same_digits_in_both_languages():
    """The digits come from one formatting in study.report.present; only symbols differ by language."""
    values = [0.0, 1.005, 2.675, -3.14159, 12345.6789, 0.1235, 99.95]
    for v in values:
        for d in (0, 1, 2, 3):
            en = P.fmt_num(v, d)
            with i18n.use("zh"):
                assert P.fmt_num(v, d) == en


def test_study_names_fall_back_to_marked_english():
    class Obj:
        name = "Express lane"
        name_zh = ""

    with i18n.use("zh"):
        assert i18n.pick(Obj(), "name") == "Express lane（英文，未译）"
        Obj.name_zh = "快速通道"
        assert i18n.pick(Obj(), "name") == "快速通道"
    assert i18n.pick(Obj(), "name") == "Express lane"


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown report language"):
        i18n.set_language("fr")
    assert i18n.check_language("zh-CN") == "zh"


def test_a_repeated_column_name_kept_apart_by_a_trailing_space_is_translated_too():
    """The AI table has two interval columns, "95 % CI" and "95 % CI " (a frame cannot hold one name twice); the second
    one stayed English in the Chinese report."""
    import pandas as pd

    from study.report import present

    df = pd.DataFrame({"95 % CI": ["[1, 2]"], "95 % CI ": ["[3, 4]"]})
    with i18n.use("zh"):
        out = present.table_html(df, "t")
    assert out.count("95%置信区间") == 2 and "CI" not in out.split("<tbody>")[0].split("</caption>")[1]


def test_every_rejection_reason_and_dataset_has_a_chinese_cell(study):
    """Appendix B lists rejected rows by dataset and reason (codes with '_' shown as spaces); the request log's reasons
    ('responded before received', 'unknown grade', ...) and its dataset name stayed English in the Chinese report. Every
    reason the row rules of the sample study can give, and every dataset, must be in the catalogue."""
    import pandas as pd

    from study.data import validate as V

    bad = {"x": pd.Series(dtype=bool)}
    rules = (V.survey_rules(study, "2025Q2", bad) + V.process_rules(study, "2025Q2", bad, True, True)
             + V.request_rules(study, "2025Q2", bad, {"branch_id", "post_contact_rating", "complaint_grade", "category",
                                                      "resolved_first_contact", "first_response_at", "resolved_at"})
             + V.benchmark_rules(study, bad))
    words = {r.reason.split(":")[0].replace("_", " ") for r in rules} | {"invalid weight"}
    words |= {d.replace("_", " ") for d in ("survey", "process_times", "benchmark", "service_requests")}
    with i18n.use("zh"):
        untranslated = sorted(w for w in words if i18n.tr_known(w, "cell") == w)
    assert untranslated == []


def test_months_are_written_as_chinese_readers_write_them(zh):
    """No ISO month (2024-11) in the Chinese report: 2024年11月 in prose and tables, axis ticks 11月 with the year at the
    first tick and where it changes."""
    assert i18n.month("2024-11") == "2024年11月" and i18n.month("2025-04", year=False) == "4月"
    assert i18n.month_ticks(["2024-11", "2024-12", "2025-01", "2025-02"]) == ["2024年11月", "12月", "2025年1月", "2月"]
    with i18n.use("en"):
        assert i18n.month("2024-11") == "2024-11" and i18n.month_ticks(["2024-12", "2025-01"]) == ["2024-12", "2025-01"]
