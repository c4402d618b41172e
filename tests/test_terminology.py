"""One term per concept in the Chinese report (issue 21): the terminology file (docs/terminology.zh.md) lists the chosen
term of each concept and the variants not to use; the catalogue and the sample study's Chinese names must use none of
the variants, and Chinese text puts no space between a Han character and a Latin letter or digit (the style sheet adds
the gap)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from study import i18n
from study.data.config import DEFAULT_STUDY_FILE, load_study
from tests.conftest import ROOT

TERMINOLOGY = ROOT / "docs" / "terminology.zh.md"
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: What the style sheet spaces from Han characters by itself (text-autospace): Latin letters, digits, Greek (α, ω, χ),
#: superscripts, a sign, a percent sign, a template's field. No space is typed between them and a Han character, nor
#: between two Han characters; a space stays before an interval after 置信区间 ("95%置信区间 [0.10, 1.12]").
_LATIN = r"A-Za-z0-9\u0370-\u03ff"
SPACE_BETWEEN_SCRIPTS = re.compile(
    rf"[{HAN}][ \u00a0]+[{_LATIN}+\u2212]"             # 为 78.8
    rf"|[{HAN}](?<!区间)[ \u00a0]+\{{"                   # 为 {}
    rf"|[{_LATIN}²³%}}][ \u00a0]+[{HAN}]"               # 78.8 分, {} 个
    rf"|[{HAN}][ \u00a0]+[{HAN}]")                       # 超出 研究


def terminology(path: Path = TERMINOLOGY) -> list[tuple[str, str, list[re.Pattern]]]:
    """(English, 中文, [variant patterns]) of each row of the terms table."""
    rows = []
    table = path.read_text(encoding="utf-8").split("## Terms", 1)[1]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0] or set(cells[0]) <= {"-"} or cells[0] == "English":
            continue
        variants = [re.compile(v) for v in re.findall(r"`([^`]+)`", cells[2])]
        rows.append((cells[0], cells[1], variants))
    return rows


def variant_hits(text: str, rows=None) -> list[str]:
    """The variants found in ``text``: "variant 'x' of 'concept' (use 'term')"."""
    out = []
    for en, zh, variants in rows or terminology():
        for rx in variants:
            m = rx.search(text)
            if m:
                out.append(f"{m.group()!r} is a variant of {en!r}: use {zh!r}")
    return out


def spacing_hits(text: str) -> list[str]:
    return [m.group() for m in SPACE_BETWEEN_SCRIPTS.finditer(text)]


def _messages() -> list[tuple[str, str]]:
    out = []
    for (ctx, msgid), msgstr in i18n.catalogue.__wrapped__("zh").items():
        for s in ((msgstr,) if isinstance(msgstr, str) else msgstr):
            out.append((f"{msgid!r}" + (f" [{ctx}]" if ctx else ""), s))
    return out


def _study_texts(study) -> list[tuple[str, str]]:
    """Every *_zh text of a study definition, with its key path."""
    out = []

    def walk(obj, where):
        if isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                value = getattr(obj, name)
                if name.endswith("_zh") and isinstance(value, str) and value:
                    out.append((f"{where}.{name}", value))
                elif isinstance(value, dict) and name.endswith("_zh"):
                    out.extend((f"{where}.{name}[{k}]", v) for k, v in value.items())
                else:
                    walk(value, f"{where}.{name}")
        elif isinstance(obj, (list, tuple)):
            for i, x in enumerate(obj):
                walk(x, f"{where}[{getattr(x, 'id', i)}]")
        elif isinstance(obj, dict):
            for k, x in obj.items():
                walk(x, f"{where}[{k}]")

    walk(study, "study")
    return out


def test_the_terminology_file_is_well_formed():
    rows = terminology()
    assert len(rows) >= 30
    terms = {en for en, _, _ in rows}
    for concept in ("Welch's t test", "difference-in-differences", "statistical power", "cycle time", "customer segment",
                    "queue data (the queue system's log)", "undecided (a target, a claim)", "top-2-box share",
                    "study definition (the study's settings)", "confidence interval"):
        assert concept in terms, concept
    for en, zh, variants in rows:
        assert zh and variants, en
        for rx in variants:   # a variant never matches the chosen term itself
            assert not rx.search(zh.split("（")[0]), (en, rx.pattern)


def test_the_catalogue_uses_one_term_per_concept():
    rows = terminology()
    problems = [f"{where}: {hit}" for where, text in _messages() for hit in variant_hits(text, rows)]
    assert problems == [], f"{len(problems)} variant(s):\n" + "\n".join(problems[:60])


def test_the_catalogue_types_no_space_between_han_and_latin():
    problems = [f"{where}: {hit!r}" for where, text in _messages() for hit in spacing_hits(text)]
    assert problems == [], f"{len(problems)} message(s):\n" + "\n".join(problems[:60])


def test_the_sample_study_names_use_the_terms():
    """The *_zh names of study.yml and the Chinese labels the metric registry builds from them."""
    from study import metrics

    study = load_study(DEFAULT_STUDY_FILE)
    rows = terminology()
    texts = _study_texts(study) + [(f"metrics[{k}].label_zh", m.label_zh) for k, m in metrics.registry(study).items()]
    assert len(texts) > 50
    problems = [f"{where}: {hit}" for where, text in texts for hit in variant_hits(text, rows) + spacing_hits(text)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("text, bad", [
    ("两组比较采用Welch t检验", True), ("两组比较采用韦尔奇 t 检验", False), ("统计检验力为80%", False),
    ("检验力为80%", True), ("业务周期时间", False), ("业务周期较长", True), ("客户细分", True), ("尚无定论", True),
    ("95% 置信区间", True), ("95%置信区间 [1, 2]", False), ("研究定义中的目标", True), ("号票数", False), ("排队票数", True),
])
def test_a_variant_is_caught(text, bad):
    assert bool(variant_hits(text)) is bad


def test_spacing_rule():
    assert spacing_hits("满意度为 78.8 分") == ["为 7", "8 分"]
    assert spacing_hits("共 {} 家，超出 标准") == ["共 {", "} 家", "出 标"]
    assert spacing_hits("满意度为78.8分（95%置信区间 [76.1, 80.2]），p = 0.038") == []
