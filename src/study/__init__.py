"""Service-quality research toolkit for retail banking.

Layers, each importing only those before it (tests/test_layers.py): the foundation (``errors``, ``i18n``,
``metrics``, ``thresholds``, ``progress``); ``study.data`` (study.yml, readers, validation, the processed store);
``study.stats`` (DataFrames in, results out: reliability, scores, design, trend, drivers, effects, process,
requests, point_service, benchmark); ``study.report`` (what each chapter shows: analysis, text, tables,
figures, present, render). On top: ``study.sample`` (the seeded sample study), ``study.bench``, ``cli``
(``python -m study``).
"""

__version__ = "0.1.0"

#: Modules of the flat package (up to 0.1) and where they live now: ``from study import present`` in an older
#: notebook fails with the new place named instead of a bare "cannot import name".
MOVED = {
    "analysis": "study.report.analysis",
    "benchmark": "study.stats.benchmark",
    "config": "study.data.config",
    "design": "study.stats.design",
    "design_analysis": "study.report.design_analysis",
    "design_report": "study.report.design",
    "drivers": "study.stats.drivers",
    "effects": "study.stats.effects",
    "figures": "study.report.figures",
    "io": "study.data.io",
    "narrative": "study.report.text",
    "point_service": "study.stats.point_service",
    "present": "study.report.present",
    "process": "study.stats.process",
    "reliability": "study.stats.reliability",
    "report": "study.report.render",
    "report_paths": "study.report.paths",
    "report_requests": "study.report.requests",
    "requests": "study.stats.requests",
    "sample_log": "study.sample.log",
    "sample_requests": "study.sample.requests",
    "scores": "study.stats.scores",
    "store": "study.report.store",
    "tables": "study.report.tables",
    "tracking_report": "study.report.tracking",
    "trend": "study.stats.trend",
    "validate": "study.data.validate",
}


def __getattr__(name: str):
    if name in MOVED:
        raise ImportError(f"study.{name} is now {MOVED[name]} (the package is in layers: study.data, study.stats, "
                          f"study.report); write `from {MOVED[name].rsplit('.', 1)[0]} import {MOVED[name].rsplit('.', 1)[1]}`",
                          name=f"study.{name}")
    raise AttributeError(f"module 'study' has no attribute {name!r}")
