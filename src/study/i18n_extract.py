"""The message catalogue's maintenance: find every translatable text in the code, update the .po files,
check their coverage.

``python -m study i18n update`` rewrites ``src/study/locale/study.pot`` (the template) from the code
and merges it into every language's ``.po`` (new messages come in untranslated, changed ones as
fuzzy, translations kept); ``python -m study i18n check`` lists what is missing. The test
``tests/test_i18n.py`` runs the check: a message without a translation fails it.

The extractor reads the Python source (``src/study``) and the code cells of the chapter notebooks
with :mod:`ast`, so it sees exactly the calls the code makes (see :mod:`study.i18n` for the
functions that mark text). Babel's own Python extractor is token-based and would miss an f-string
or a concatenation passed as a template; this one reports them as problems, because a template
that is not one literal cannot be looked up.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from study import i18n

PACKAGE_DIR = Path(__file__).resolve().parent
POT_PATH = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
# Locations are written as files without line numbers: an edit elsewhere in a file then changes nothing in
# the catalogue, so branches that add messages merge without conflicts in unrelated entries.
HEADER_COMMENT = ("# {lang} translation of the study toolkit's report (msgid = the English text in the code).\n"
                  "# Edit msgstr only; `python -m study i18n update` merges new messages from the code,\n"
                  "# `python -m study i18n check` (and tests/test_i18n.py) lists what is missing.")
#: A fixed date in the headers, so the files only change when a message does.
HEADER_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

# function name -> positions of (context, singular, plural) in its arguments (None: absent)
KEYWORDS: dict[str, tuple[int | None, int, int | None]] = {
    "_": (None, 0, None), "gettext": (None, 0, None), "N_": (None, 0, None), "md": (None, 0, None),
    "pgettext": (0, 1, None), "NP_": (0, 1, None), "pmd": (0, 1, None),
    "ngettext": (None, 0, 1), "nmd": (None, 0, 1), "npgettext": (0, 1, 2),
}
# The functions that implement the lookups pass variables on; they are not call sites to check.
_IMPLEMENTATIONS = {"md", "pmd", "nmd", "_fill", "gettext", "pgettext", "ngettext", "npgettext", "tr", "untranslated",
                    "appendix_label", "next_label"}


@dataclass
class Message:
    context: str | None
    msgid: str
    plural: str | None = None
    locations: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Extracted:
    messages: dict[tuple[str | None, str], Message]
    problems: list[str]


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class _Visitor(ast.NodeVisitor):
    def __init__(self, where: str, out: Extracted, line_offset: int = 0):
        self.where, self.out, self.offset, self.stack = where, out, line_offset, []

    def visit_FunctionDef(self, node):
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call):
        name = _name(node.func)
        line = node.lineno + self.offset
        if name in KEYWORDS:
            ctx_i, s_i, p_i = KEYWORDS[name]
            need = max(i for i in (ctx_i, s_i, p_i) if i is not None)
            args = node.args
            inside = bool(self.stack) and self.stack[-1] in _IMPLEMENTATIONS
            if len(args) > need:
                ctx = _literal(args[ctx_i]) if ctx_i is not None else None
                msgid = _literal(args[s_i])
                plural = _literal(args[p_i]) if p_i is not None else None
                ok = msgid is not None and (ctx_i is None or ctx is not None) and (p_i is None or plural is not None)
                if ok:
                    key = (ctx, msgid)
                    msg = self.out.messages.setdefault(key, Message(ctx, msgid, plural))
                    msg.plural = msg.plural or plural
                    msg.locations.append((self.where, line))
                elif not inside:
                    self.out.problems.append(f"{self.where}:{line}: {name}() needs string literals as its context and "
                                             "template (an f-string or a concatenation cannot be looked up in the catalogue)")
        elif name == "Md" and node.args and not (self.stack and self.stack[-1] in _IMPLEMENTATIONS):
            text = _literal(node.args[0])
            if text is not None and any(c.isalpha() for c in text):
                self.out.problems.append(f"{self.where}:{line}: Md({text[:40]!r}...) is text the catalogue does not see; "
                                         "write md(...) so it is translated")
            elif isinstance(node.args[0], ast.JoinedStr):
                self.out.problems.append(f"{self.where}:{line}: Md(f-string) is text the catalogue does not see; "
                                         "write md(template, values)")
        self.generic_visit(node)


def python_files() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if p.name != "i18n_extract.py")


def notebook_files() -> list[Path]:
    from study.data import config

    return sorted(Path(config.NOTEBOOKS_DIR).glob("*.ipynb"))


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PACKAGE_DIR.parent.parent))
    except ValueError:
        return path.name


def extract(files: Iterable[Path] | None = None, notebooks: Iterable[Path] | None = None) -> Extracted:
    """Every message the code and the notebooks use, with where; and the calls that cannot be extracted."""
    out = Extracted({}, [])
    for path in python_files() if files is None else files:
        _Visitor(_relative(path), out).visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    for path in notebook_files() if notebooks is None else notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            src = "".join(cell.get("source", []))
            src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())
            _Visitor(f"{_relative(path)}#cell{i}", out).visit(ast.parse(src, f"{path}#cell{i}"))
    return out


def template_catalog(ex: Extracted):
    from babel.messages.catalog import Catalog

    cat = Catalog(domain=i18n.DOMAIN, project="study", version="", copyright_holder="study contributors",
                  creation_date=HEADER_DATE, revision_date=HEADER_DATE, fuzzy=False)
    for (ctx, msgid), m in sorted(ex.messages.items(), key=lambda kv: (kv[0][1], kv[0][0] or "")):
        mid = (msgid, m.plural) if m.plural else msgid
        flags = ["python-brace-format"] if _fields(msgid) else []
        cat.add(mid, context=ctx, locations=sorted(set(m.locations)), flags=flags)
    return cat


def update(langs: Iterable[str] = ("zh",)) -> dict[str, int]:
    """Write the .pot and merge it into each language's .po; returns untranslated counts per language."""
    from babel.messages.pofile import read_po, write_po

    ex = extract()
    tmpl = template_catalog(ex)
    POT_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(POT_PATH, "wb") as fh:
        write_po(fh, tmpl, width=100, sort_output=True, include_lineno=False)
    counts = {}
    for lang in langs:
        path = i18n.po_path(lang)
        if path.is_file():
            with open(path, "rb") as fh:
                cat = read_po(fh, locale=i18n.LOCALES[lang], domain=i18n.DOMAIN)
        else:
            from babel.messages.catalog import Catalog

            cat = Catalog(locale=i18n.LOCALES[lang], domain=i18n.DOMAIN, project="study")
        cat.update(tmpl, update_header_comment=False)
        cat.creation_date = HEADER_DATE
        cat.revision_date = HEADER_DATE
        cat.fuzzy = False
        cat.header_comment = HEADER_COMMENT.format(lang=i18n.LOCALES[lang])
        cat.last_translator = "study contributors"
        cat.language_team = i18n.LOCALES[lang]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            write_po(fh, cat, width=100, sort_output=True, include_lineno=False, ignore_obsolete=True)
        counts[lang] = sum(1 for m in cat if m.id and (not m.string or m.fuzzy or
                                                     (isinstance(m.string, tuple) and not all(m.string))))
    i18n.catalogue.cache_clear()
    return counts


def _fields(text: str) -> list[str]:
    """The fields of a template: names, and one "#" per positional value ("{}" and "{0}" alike: a
    translation may number its fields to put the values in another order)."""
    try:
        found = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError:
        return ["<malformed>"]
    named = [f for f in found if f and not f.isdigit()]
    auto = sum(1 for f in found if f == "")
    numbered = {f for f in found if f.isdigit()}
    if auto and numbered:
        return ["<mixes {} and {0}>"]
    return sorted(named) + ["#"] * (auto or len(numbered))


def check(lang: str = "zh") -> list[str]:
    """Problems of the catalogue of ``lang``: every message the code uses must be translated, with the
    same ``{}`` fields and the same Markdown emphasis as the English; every call must be extractable."""
    ex = extract()
    cat = i18n.catalogue.__wrapped__(lang)
    problems = list(ex.problems)
    for (ctx, msgid), m in sorted(ex.messages.items(), key=lambda kv: kv[0][1]):
        where = f"{m.locations[0][0]}:{m.locations[0][1]}"
        found = cat.get((ctx, msgid))
        label = f"{msgid!r}" + (f" (context {ctx!r})" if ctx else "")
        if found is None and not i18n.needs_translation(msgid):
            continue
        if found is None:
            problems.append(f"{where}: no {lang} translation of {label}")
            continue
        forms = (found,) if isinstance(found, str) else found
        for f in forms:
            if _fields(f) != _fields(msgid) and not (m.plural and _fields(f) == _fields(m.plural)):
                problems.append(f"{where}: the {lang} translation of {label} has the fields {_fields(f)}, "
                                f"the English {_fields(msgid)}")
            if f.count("**") != msgid.count("**"):
                problems.append(f"{where}: the {lang} translation of {label} changes the bold markup (**)")
    return problems


def main(args) -> int:
    if args.action == "update":
        counts = update()
        print(f"wrote {POT_PATH.relative_to(PACKAGE_DIR.parent.parent)}; untranslated: "
              + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0
    problems = check(args.lang)
    for p in problems:
        print(p)
    n = len(extract().messages)
    print(f"{n} messages; {len(problems)} problem(s) in the {args.lang} catalogue")
    return 1 if problems else 0
