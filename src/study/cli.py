"""Command line: ``python -m study <command>``.

Commands
--------
validate  check a quarter's raw data and print what would be kept and rejected (writes nothing)
prepare   validate a quarter and write processed data, rejected rows and the manifest
sample    write the seeded sample study (or, with --tickets N, a large process-time log)
report    render the improvement report for a quarter against a baseline (--lang en, zh or en,zh)
i18n      update the message catalogue from the code (update) or check its translations (check)
bench     run the performance benchmarks

User errors (a missing or broken file, a mistake in study.yml) print one message and exit with
code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.data import config
from study.errors import StudyError


def _common(p: argparse.ArgumentParser, quarter: bool = True) -> None:
    if quarter:
        p.add_argument("--quarter", required=True, help="quarter to process, e.g. 2025Q2 (a folder in DATA_DIR/raw)")
    p.add_argument("--data-dir", type=Path, default=config.DEFAULT_DATA_DIR,
                   help="folder holding raw/ and processed/ (default: the repository's data/)")
    p.add_argument("--study", type=Path, default=config.DEFAULT_STUDY_FILE,
                   help="study definition (default: the repository's study.yml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a quarter's raw data; print kept and rejected rows per reason")
    _common(p)
    p = sub.add_parser("prepare", help="validate a quarter and write processed data and its manifest")
    _common(p)
    p = sub.add_parser("sample", help="write the seeded sample study into DATA_DIR/raw")
    _common(p, quarter=False)
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the sample's own)")
    p.add_argument("--tickets", type=int, default=None,
                   help="instead of the sample study, stream a process-time log of this many tickets as Parquet "
                        "into DATA_DIR/processed/<QUARTER>/process_times/")
    p.add_argument("--log-quarter", default="2025Q1", help="quarter of the large log (with --tickets)")
    p = sub.add_parser("report", help="render the improvement report (HTML and PDF) for a quarter")
    _common(p)
    p.add_argument("--baseline", default="", help="baseline quarter to compare against, e.g. 2025Q1 "
                   "(empty: the first quarter of a study, reported without comparisons)")
    p.add_argument("--lang", default="en", help="language(s) of the report: en (default), zh, or en,zh for both from "
                   "one analysis (Chinese files are named report.zh.html / report.zh.pdf)")
    p.add_argument("--out-dir", type=Path, default=None, help="folder the report is written to, as OUT_DIR/<QUARTER>/ "
                   "(default: the repository's reports/; give one for a study that lives elsewhere, or its report "
                   "replaces the sample's of the same quarter)")
    p = sub.add_parser("i18n", help="message catalogue: `update` it from the code, or `check` its translations")
    p.add_argument("action", choices=["update", "check"])
    p.add_argument("--lang", default="zh", help="language to check (default zh)")
    p = sub.add_parser("bench", help="run the performance benchmarks and print the figures")
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    p.add_argument("--only", nargs="*", default=None, help="benchmarks to run (reliability, drivers, process, requests)")
    return parser


class _Progress:
    """One-line progress display on stderr (only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if self.tty:
            print(f"\r\033[K.. {message}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def _print_summary(result) -> None:
    from study.data.values import escape

    print(f"Quarter {result.quarter}")
    for name, res in result.datasets.items():
        c = res.counts
        enc = f", {res.raw.encoding}" if res.raw.encoding else ""
        print(f"  {name:<14} {res.raw.path.name} ({res.raw.format}{enc}): read {c['read']:,}, kept {c['kept']:,}, rejected {c['rejected']:,}")
        for reason, n in c["rejected_by_reason"].items():
            print(f"      {reason:<26} {n:>7,}")
        for note in res.notes:
            print(f"    note: {escape(note)}")
    for name in result.not_supplied:
        print(f"  {name}: not supplied")


def cmd_validate(args, write: bool) -> int:
    config.check_quarter(args.quarter)  # checked before importing pandas/pandera: a typo fails at once
    study = config.load_study(args.study)
    from study.data import validate

    progress = _Progress()
    fn = validate.prepare_quarter if write else validate.validate_quarter
    try:
        result = fn(study, args.study, args.data_dir, args.quarter, progress=progress)
    finally:
        progress.done()
    _print_summary(result)
    missing = study.missing_translations()
    if "benchmark" in result.datasets:   # the competitors are named in the data, not in study.yml
        missing += [f"benchmark.banks_zh[{b}]" for b in study.missing_bank_names(result.datasets["benchmark"].kept["bank"])]
    if missing:
        print(f"  warning: {len(missing)} text(s) of the study definition have no Chinese (*_zh) version; the Chinese "
              "report shows them in English, marked:")
        for key in missing:
            print(f"    {key}")
    from study import fonts
    from study.data.values import undrawable_study_text

    for loc, chars in undrawable_study_text(study)[:10]:
        print(f"  warning: study.yml {loc} holds characters the report's fonts cannot draw ({fonts.describe(chars)}); "
              "the report prints them as empty boxes")
    if write:
        print(f"  written to {Path(args.data_dir) / 'processed' / args.quarter}/ (Parquet, rejected_*.csv, manifest.json)")
    else:
        print("  (validate only: nothing written; run `prepare` to write processed data)")
    return 0


def cmd_sample(args) -> int:
    from study import sample

    study = config.load_study(args.study)
    kwargs = {} if args.seed is None else {"seed": args.seed}
    if args.tickets is not None:
        import os

        config.check_quarter(args.log_quarter)
        out = sample.write_process_log(study, args.data_dir, args.log_quarter, args.tickets,
                                       workers=min(2, os.cpu_count() or 1), **kwargs)
        parts = sorted(Path(out).glob("part-*.parquet"))
        print(f"wrote {args.tickets:,} tickets in {len(parts)} Parquet part(s) to {out}")
        return 0
    truth = sample.write_sample(study, args.data_dir, **kwargs)
    print(f"wrote the sample study for {', '.join(truth['quarters'])} to {Path(args.data_dir) / 'raw'} (truth in truth.json)")
    return 0


def cmd_report(args) -> int:
    config.check_quarter(args.quarter)
    if args.baseline:
        config.check_quarter(args.baseline)
    try:
        from study.report import render as report
    except ImportError:
        raise StudyError("the report pipeline is not built yet (see the open issue on the rendered report); "
                         "`make data` prepares the processed data meanwhile.") from None
    return report.main(args)


def cmd_bench(args) -> int:
    from study import bench

    return bench.main(quick=args.quick, only=args.only)


def _os_error(exc: OSError) -> str:
    """A user message for a file-system failure at the command-line boundary (no traceback)."""
    where = exc.filename or "a file in the data folder"
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        return (f"{where}: permission denied. Make the data folder (raw/ to read, processed/ and the key file to write) "
                "accessible to this user, or pass --data-dir with a folder you can write to.")
    return f"{where}: {reason}. Check the path, free disk space and permissions, then run the command again."


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI time-out, ``kill``, a service manager stopping the job), handled like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    args = build_parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        # unwind like Ctrl-C: temporary folders are removed by the same cleanup, nothing half-written is swapped in
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    try:
        if args.command in ("validate", "prepare"):
            try:
                return cmd_validate(args, write=args.command == "prepare")
            except OSError as exc:  # read-only or unreadable data folder: a user error, not a bug
                raise StudyError(_os_error(exc)) from None
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "i18n":
            from study import i18n_extract

            return i18n_extract.main(args)
    except StudyError as exc:
        from study.data.values import escape  # what a message echoes from a file never drives the terminal

        print(f"error: {escape(str(exc), keep=chr(10))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print("terminated (SIGTERM)" if terminated else "interrupted", file=sys.stderr)
        return 143 if terminated else 130
    return 1
