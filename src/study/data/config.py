"""Paths and the study definition (``study.yml``).

``load_study(path)`` reads and validates the study definition with pydantic before any data is
read. A mistake (unknown key, weights not summing to 1, an item in no dimension, a reversed
range, a branch named by a measure but not defined ...) raises :class:`StudyDefinitionError`
whose message names the file, the key path and what is expected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, field_validator, model_validator

from study.data import values
from study.errors import StudyDefinitionError
from study.metrics import PROCESS_METRIC_IDS, RECOMMEND_TOP2, SURVEY_METRIC_IDS

# ---------------------------------------------------------------------------------------------
# Paths: set once here, from the location of this file (cookiecutter-data-science convention).
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_STUDY_FILE = PROJECT_ROOT / "study.yml"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

DATASETS = ("survey", "process_times", "benchmark", "service_requests")
QUARTER_PATTERN = re.compile(r"^(\d{4})Q([1-4])$")

# Metrics a study may name in measures, targets and the SQI, besides a questionnaire dimension id (its
# 0-100 score): the metric registry's ids (study.metrics states their labels, units and kinds). The
# recommend top-2 share is the report's stand-in for an NPS where recommend is not on 0-10, not a metric
# a study names.
PROCESS_METRICS = PROCESS_METRIC_IDS
SURVEY_METRICS = tuple(m for m in SURVEY_METRIC_IDS if m != RECOMMEND_TOP2)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleRange(_Model):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> "ScaleRange":
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be smaller than max ({self.max})")
        return self


class Dimension(_Model):
    id: str
    label: str
    label_zh: str = ""


class Item(_Model):
    id: str
    dimension: str
    label: str
    label_zh: str = ""
    reverse: bool = False


class Outcome(_Model):
    column: str
    label: str
    label_zh: str = ""
    scale: ScaleRange


class Outcomes(_Model):
    overall_satisfaction: Outcome
    recommend: Outcome | None = None
    complaint: Outcome | None = None


class Questionnaire(_Model):
    scale: ScaleRange
    dimensions: list[Dimension] = Field(min_length=1)
    items: list[Item] = Field(min_length=2)
    outcomes: Outcomes


class Category(_Model):
    id: str
    label: str
    label_zh: str = ""


class Branch(_Model):
    id: str
    name: str
    name_zh: str = ""
    counters: int = Field(gt=0)


class BusinessType(_Model):
    id: str
    label: str
    label_zh: str = ""
    standard_minutes: float = Field(gt=0)
    ideal_cycle_minutes: float | None = Field(default=None, gt=0)


class OpeningHours(_Model):
    open: int = Field(ge=0, le=23)
    close: int = Field(ge=1, le=24)

    @model_validator(mode="after")
    def _ordered(self) -> "OpeningHours":
        if not self.open < self.close:
            raise ValueError(f"open ({self.open}) must be before close ({self.close})")
        return self


class ServiceLevel(_Model):
    waiting_target_minutes: float = Field(gt=0)
    target_share: float = Field(gt=0, lt=1)
    opening_hours: OpeningHours


class SQIIndicator(_Model):
    id: str
    label: str
    label_zh: str = ""
    source: Literal["process", "survey", "benchmark"]
    weight: float = Field(gt=0, le=1)
    direction: Literal["higher", "lower"]
    min: float
    max: float
    unit: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> "SQIIndicator":
        if not self.min < self.max:
            raise ValueError(f"historical range is reversed or empty: min ({self.min}) must be smaller than max ({self.max})")
        return self


class Target(_Model):
    id: str
    label: str
    label_zh: str = ""
    metric: str
    kind: Literal["level", "change", "relative_change"]
    operator: Literal[">=", "<="]
    value: float


class Measure(_Model):
    id: str
    name: str
    name_zh: str = ""
    start: dt.date
    description: str = ""
    description_zh: str = ""
    pilot: list[str] = Field(min_length=1)
    control: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> "Measure":
        both = sorted(set(self.pilot) & set(self.control))
        if both:
            raise ValueError(f"branches {both} are both pilot and control; a branch belongs to one group")
        return self


class RakeMargin(_Model):
    """A known margin the weights are raked (or, alone, post-stratified) to: shares of a survey column's values."""

    column: str
    shares: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> "RakeMargin":
        if not all(0 < v < float("inf") for v in self.shares.values()):   # refuses .nan and .inf too
            raise ValueError(f"margin '{self.column}': every share must be positive")
        _check_weights(list(self.shares.values()), f"sampling.rake[{self.column}].shares")
        return self


class Sampling(_Model):
    """The survey's sampling design (study.yml ``sampling``).

    ``strata``: the survey column whose values are the strata (``branch_id``, ``segment`` or
    ``channel``). Stratum population sizes: ``population`` (stratum -> size, every quarter),
    ``population_by_quarter`` (quarter -> stratum -> size, overriding it), or ``population_source:
    process_times`` (the quarter's queue-log ticket counts per branch). Or a ``weight`` column in the
    survey. ``rake``: optional known margins (shares of a column's values); one margin is a
    post-stratification. ``basis``: what a population unit is (customers or visits), for the report.
    """

    strata: Literal["branch_id", "segment", "channel"] | None = None
    population: dict[str, float] = Field(default_factory=dict)
    population_by_quarter: dict[str, dict[str, float]] = Field(default_factory=dict)
    population_source: Literal["study", "process_times"] = "study"
    weight: str | None = None
    rake: list[RakeMargin] = Field(default_factory=list)
    basis: Literal["customers", "visits"] = "customers"

    @model_validator(mode="after")
    def _one_source(self) -> "Sampling":
        sized = bool(self.population or self.population_by_quarter) or self.population_source == "process_times"
        if self.weight is None and not sized:
            raise ValueError("declare stratum population sizes (population, population_by_quarter or population_source: "
                             "process_times) with strata, or a weight column")
        if sized and self.strata is None:
            raise ValueError("population sizes need strata: name the survey column whose values are the strata")
        if self.weight is not None and sized:
            raise ValueError("give either a weight column or stratum population sizes, not both")
        if self.population_source == "process_times" and self.strata != "branch_id":
            raise ValueError("population_source: process_times counts tickets per branch; it needs strata: branch_id")
        for q in self.population_by_quarter:
            if not QUARTER_PATTERN.match(str(q)):
                raise ValueError(f"population_by_quarter: '{q}' is not a quarter of the form 2025Q1")
        for sizes in [self.population, *self.population_by_quarter.values()]:
            if not all(0 < v < float("inf") for v in sizes.values()):   # refuses .nan and .inf too
                raise ValueError("population sizes must be positive numbers")
        if len({m.column for m in self.rake}) < len(self.rake):
            raise ValueError("rake: a column appears twice")
        return self


class Tracking(_Model):
    """Tracking across quarters: the baseline period of the control charts (first and last quarter)."""

    chart_baseline: list[str] = Field(min_length=2, max_length=2)

    @model_validator(mode="after")
    def _quarters(self) -> "Tracking":
        a, b = self.chart_baseline
        if not (QUARTER_PATTERN.match(a) and QUARTER_PATTERN.match(b)) or a > b:
            raise ValueError("chart_baseline: two quarters of the form 2025Q1, the first not after the second")
        return self


class BenchmarkMetric(_Model):
    id: str
    label: str
    label_zh: str = ""
    unit: str
    unit_zh: str = ""      # the unit in the Chinese report ("分（1–10分制）"); the common unit words are translated
    direction: Literal["higher", "lower"]
    weight: float = Field(gt=0, le=1)


class Benchmark(_Model):
    """The competitor benchmark: our bank's name in the data (``our_bank``) and, for the Chinese report, the banks'
    Chinese names (``our_bank_zh``; ``banks_zh``: a competitor's name in the data -> its Chinese name)."""

    our_bank: str
    our_bank_zh: str = ""
    banks_zh: dict[str, str] = Field(default_factory=dict)
    metrics: list[BenchmarkMetric] = Field(min_length=1)


class RequestChannel(_Model):
    """A contact channel of the service-request log; ``digital`` marks the channels an AI assistant serves."""

    id: str
    label: str
    label_zh: str = ""
    digital: bool = False


class ComplaintGrade(_Model):
    """A complaint grade (e.g. general / major / serious) with its resolution deadline in hours."""

    id: str
    label: str
    label_zh: str = ""
    deadline_hours: float = Field(gt=0)


class ResponseTarget(_Model):
    """A first-response target: the share of requests first answered within ``hours``."""

    hours: float = Field(gt=0)
    label: str = ""
    label_zh: str = ""


class Visits(_Model):
    """The denominator of complaints per million visits: the quarter's kept queue tickets (when
    ``queue_tickets``) plus the digital sessions counted per quarter (``digital_sessions``, quarter -> count)."""

    queue_tickets: bool = True
    digital_sessions: dict[str, int] = Field(default_factory=dict)

    @field_validator("digital_sessions")
    @classmethod
    def _quarters(cls, value: dict[str, int]) -> dict[str, int]:
        for q, n in value.items():
            if not QUARTER_PATTERN.match(str(q)):
                raise ValueError(f"key '{q}' is not a quarter; expected the form 2025Q1")
            if n < 0:
                raise ValueError(f"{q}: a count of sessions cannot be negative ({n})")
        return value


class ChannelClaim(_Model):
    """A claim of a channel measure (e.g. the documents' "waiting time -50 %", "satisfaction +15 points"),
    checked on the measure's before/after: ``kind`` change (after - before) or relative_change (after/before - 1)."""

    id: str
    label: str
    label_zh: str = ""
    metric: str
    kind: Literal["change", "relative_change"]
    operator: Literal[">=", "<="]
    value: float


class Phase(_Model):
    """One phase of a measure's plan (digest §4: Q1 system, Q2 training, Q3 process optimisation, Q4 evaluation)."""

    quarter: str
    label: str
    label_zh: str = ""

    @field_validator("quarter")
    @classmethod
    def _is_quarter(cls, value: str) -> str:
        if not QUARTER_PATTERN.match(str(value)):
            raise ValueError(f"'{value}' is not a quarter; expected the form 2025Q1")
        return value


class ChannelMeasure(_Model):
    """An improvement measure on contact channels instead of branches (e.g. an AI assistant launched on the
    digital channels): requests on ``channels`` before ``start`` against those from ``start`` on."""

    id: str
    name: str
    name_zh: str = ""
    start: dt.date
    description: str = ""
    description_zh: str = ""
    channels: list[str] = Field(min_length=1)
    metrics: list[str] = Field(default_factory=lambda: ["request_first_response_minutes", "post_contact_rating"])
    claims: list[ChannelClaim] = Field(default_factory=list)
    phases: list[Phase] = Field(default_factory=list)


class ServiceRequests(_Model):
    """The service-request log (contact centre, AI assistant, complaints): its channels, complaint grades
    with deadlines, first-response targets, the post-contact rating scale, the visits denominator and the
    improvement measures on channels."""

    channels: list[RequestChannel] = Field(min_length=1)
    complaint_grades: list[ComplaintGrade] = Field(default_factory=list)
    response_targets: list[ResponseTarget] = Field(default_factory=lambda: [ResponseTarget(hours=24)])
    rating_scale: ScaleRange | None = None
    visits: Visits = Field(default_factory=Visits)
    measures: list[ChannelMeasure] = Field(default_factory=list)


class CoverageCount(_Model):
    """One quarter's channel coverage: ``covered`` of ``total`` units (target areas, service points, customers)."""

    covered: StrictInt = Field(ge=0)   # strict: "44" or true in study.yml is a typo, not a count
    total: StrictInt = Field(gt=0)

    @model_validator(mode="after")
    def _within(self) -> "CoverageCount":
        if self.covered > self.total:
            raise ValueError(f"covered ({self.covered}) cannot exceed total ({self.total})")
        return self


class ChannelCoverage(_Model):
    """Seed §5's channel coverage (metric ``channel_coverage``): per quarter, how many of the units the plan must
    reach (``unit``: e.g. target areas with a service point, or customers reachable through a channel) are covered.
    ``census``: the counts are complete (the default: the share is exact and a target on it is decided without an
    interval); false: they come from a random sample or audit of the units (Wilson interval)."""

    unit: str = "target areas"
    unit_zh: str = ""
    census: StrictBool = True
    quarters: dict[str, CoverageCount] = Field(min_length=1)

    @field_validator("quarters")
    @classmethod
    def _quarter_keys(cls, value: dict) -> dict:
        for q in value:
            if not QUARTER_PATTERN.match(str(q)):
                raise ValueError(f"key '{q}' is not a quarter; expected the form 2025Q1")
        return value


class InformationAccuracy(_Model):
    """Seed §5's customer-information accuracy (metric ``information_accuracy``): the share of the queue log's
    tickets of the named information-verification business type that passed at the first attempt (``first_pass``)."""

    business_type: str


GIB = 1 << 30


class Limits(_Model):
    """Resource limits on input files, so a small hostile file cannot exhaust the machine.

    ``max_decompressed_bytes`` bounds the text of a CSV (plain, or a ``.csv.gz`` after
    decompression, which is streamed and stopped at the limit) and the uncompressed size of a
    Parquet file or of an ``.xlsx``'s parts; the environment variable ``STUDY_MAX_DECOMPRESSED_BYTES`` overrides it. The
    spreadsheet limits bound the used range of the first sheet of an ``.xlsx`` (and the size of an
    SPSS file), checked before any cell is read.
    """

    max_decompressed_bytes: int = Field(default=2 * GIB, gt=0)
    max_spreadsheet_rows: int = Field(default=1_048_576, gt=0)
    max_spreadsheet_columns: int = Field(default=1_000, gt=0)
    max_spreadsheet_cells: int = Field(default=20_000_000, gt=0)
    # Plausible magnitudes (study.data.values.BOUNDS states each with its reason): a count or duration beyond what a bank
    # can have is refused with its key path; raise a bound here when a genuine value exceeds it.
    max_sessions_per_quarter: float = Field(default=values.BOUNDS["max_sessions_per_quarter"].maximum, gt=0)
    max_units: float = Field(default=values.BOUNDS["max_units"].maximum, gt=0)
    max_counters: float = Field(default=values.BOUNDS["max_counters"].maximum, gt=0)
    max_standard_minutes: float = Field(default=values.BOUNDS["max_standard_minutes"].maximum, gt=0)
    max_deadline_hours: float = Field(default=values.BOUNDS["max_deadline_hours"].maximum, gt=0)
    max_benchmark_value: float = Field(default=values.BOUNDS["max_benchmark_value"].maximum, gt=0)

    @property
    def bounds(self) -> dict[str, float]:
        """The magnitude bounds in force (study.data.values.BOUNDS, as raised or lowered here)."""
        return {name: float(getattr(self, name)) for name in values.BOUNDS}


LIMIT_ENV = "STUDY_MAX_DECOMPRESSED_BYTES"


def effective_limits(study: "Study | None" = None) -> Limits:
    """The study's limits (or the defaults), with ``STUDY_MAX_DECOMPRESSED_BYTES`` applied."""
    limits = study.limits if study is not None else Limits()
    env = os.environ.get(LIMIT_ENV, "").strip()
    if env:
        try:
            value = int(env)
            if value <= 0:
                raise ValueError
        except ValueError:
            raise StudyDefinitionError(f"environment variable {LIMIT_ENV}={env!r}: expected a positive whole number of bytes "
                                       "(e.g. 2147483648 for 2 GiB).") from None
        limits = limits.model_copy(update={"max_decompressed_bytes": value})
    return limits


class Study(_Model):
    """The validated study definition. Use :func:`load_study` to read one.

    Only the questionnaire and the branches are required: a study may be a survey alone. The
    sections of the other data sources (``business_types`` with ``service_level`` for process
    times, ``benchmark`` for the competitor benchmark) are declared only by studies that have them;
    see :attr:`has_process` and :attr:`has_benchmark`.
    """

    name: str
    name_zh: str = ""
    organisation: str = ""
    organisation_zh: str = ""
    min_cell_size: int = Field(default=10, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    timezone: str = "Asia/Shanghai"   # local time of the queue system; timestamps with offsets are converted to it
    limits: Limits = Field(default_factory=Limits)
    questionnaire: Questionnaire
    segments: list[Category] = Field(default_factory=list)
    channels: list[Category] = Field(default_factory=list)
    ticket_channels: list[Category] = Field(default_factory=list)
    branches: list[Branch] = Field(min_length=1)
    business_types: list[BusinessType] = Field(default_factory=list)
    service_level: ServiceLevel | None = None
    sqi: list[SQIIndicator] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    service_requests: ServiceRequests | None = None
    channel_coverage: ChannelCoverage | None = None
    information_accuracy: InformationAccuracy | None = None
    benchmark: Benchmark | None = None
    sampling: Sampling | None = None
    tracking: Tracking | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone; expected a name such as Asia/Shanghai or Europe/Berlin") from None
        return value

    # Cross-field rules. Each error names the key path (loc) so the message can point at it.
    @model_validator(mode="after")
    def _consistent(self) -> "Study":
        q = self.questionnaire
        _unique(self.questionnaire.dimensions, "questionnaire.dimensions")
        _unique(q.items, "questionnaire.items")
        _unique(self.segments, "segments")
        _unique(self.channels, "channels")
        _unique(self.ticket_channels, "ticket_channels")
        _unique(self.branches, "branches")
        _unique(self.business_types, "business_types")
        _unique(self.sqi, "sqi")
        _unique(self.targets, "targets")
        _unique(self.measures, "measures")
        if self.benchmark is not None:
            _unique(self.benchmark.metrics, "benchmark.metrics")

        dims = [d.id for d in q.dimensions]
        for i, item in enumerate(q.items):
            if item.dimension not in dims:
                raise _KeyError(f"questionnaire.items[{i}].dimension",
                                f"item '{item.id}' names dimension '{item.dimension}', which is not defined; expected one of {dims}")
        for j, dim in enumerate(dims):
            n = sum(item.dimension == dim for item in q.items)
            if n < 2:
                raise _KeyError(f"questionnaire.dimensions[{j}]",
                                f"dimension '{dim}' has {n} item(s); a dimension needs at least 2 items to be measured")
        # identifiers and free text are never written to processed data, and the pseudonym columns are the
        # validator's: an item or outcome of that name would pass an identifier through or overwrite a pseudonym
        private = set(IDENTIFYING_COLUMNS) | {"respondent_pid", "customer_pid"}
        reserved = set(SURVEY_COLUMNS) | {o.column for o in self.outcomes} | private
        for i, item in enumerate(q.items):
            if item.id in reserved:
                raise _KeyError(f"questionnaire.items[{i}].id", f"item id '{item.id}' clashes with a reserved survey column")
        for name, o in q.outcomes:
            if o is not None and o.column in private | set(SURVEY_COLUMNS):
                raise _KeyError(f"questionnaire.outcomes.{name}.column",
                                f"column '{o.column}' is an identifier, free text or a reserved survey column")
        # the design-based estimates add one indicator column per metric named m__<metric> beside the survey's
        # columns (design.py, design_analysis.py): a survey column of that form would be taken for one
        for where, col in ([(f"questionnaire.items[{i}].id", item.id) for i, item in enumerate(q.items)]
                           + [(f"questionnaire.outcomes.{name}.column", o.column) for name, o in q.outcomes if o is not None]
                           + ([("sampling.weight", self.sampling.weight)] if self.sampling is not None
                              and self.sampling.weight is not None else [])):
            if str(col).startswith("m__"):
                raise _KeyError(where, f"'{col}' starts with 'm__', which the toolkit reserves for its indicator columns; "
                                       "rename it")

        if self.sqi:
            _check_weights([s.weight for s in self.sqi], "sqi[*].weight")
        if self.benchmark is not None:
            _check_weights([m.weight for m in self.benchmark.metrics], "benchmark.metrics[*].weight")

        branch_ids = {b.id for b in self.branches}
        known_metrics = set(PROCESS_METRICS) | set(SURVEY_METRICS) | set(dims)
        request_metrics = set(_request_metric_ids(self))
        target_metrics = known_metrics | request_metrics | set(_point_metric_ids(self))
        for i, m in enumerate(self.measures):
            for group in ("pilot", "control"):
                for k, b in enumerate(getattr(m, group)):
                    if b not in branch_ids:
                        raise _KeyError(f"measures[{i}].{group}[{k}]",
                                        f"branch '{b}' is not defined under branches; expected one of {sorted(branch_ids)}")
            for k, metric in enumerate(m.metrics):
                if metric not in known_metrics:
                    raise _KeyError(f"measures[{i}].metrics[{k}]",
                                    f"unknown metric '{metric}'; expected a dimension id or one of "
                                    f"{sorted(set(PROCESS_METRICS) | set(SURVEY_METRICS))}")
                self._check_available(metric, f"measures[{i}].metrics[{k}]")
        for i, t in enumerate(self.targets):
            if t.metric not in target_metrics:
                raise _KeyError(f"targets[{i}].metric",
                                f"unknown metric '{t.metric}'; expected a dimension id or one of "
                                f"{sorted(set(PROCESS_METRICS) | set(SURVEY_METRICS) | request_metrics | set(_point_metric_ids(self)))}")
            if t.metric == "channel_coverage" and t.kind != "level":
                raise _KeyError(f"targets[{i}].kind", "a channel-coverage target is a level (the share covered in the quarter)")
            if t.metric == "complaints_per_million" and t.kind == "change":
                raise _KeyError(f"targets[{i}].kind", "a complaints-per-million target is a level or a relative_change "
                                                      "(rates are compared by their ratio)")
            if t.metric not in request_metrics:
                self._check_available(t.metric, f"targets[{i}].metric")
        for i, s in enumerate(self.sqi):
            if s.id not in known_metrics:
                raise _KeyError(f"sqi[{i}].id",
                                f"unknown indicator '{s.id}'; expected a dimension id or one of {sorted(set(PROCESS_METRICS) | set(SURVEY_METRICS))}")
            self._check_available(s.id, f"sqi[{i}].id")
        if self.sampling is not None:
            self._check_sampling(self.sampling)
        return self

    def _check_sampling(self, sp: "Sampling") -> None:
        """Strata and rake margins name declared values of declared survey columns."""
        declared = {"branch_id": self.branch_ids, "segment": [s.id for s in self.segments],
                    "channel": [c.id for c in self.channels]}
        if sp.strata is not None and not declared[sp.strata]:
            raise _KeyError("sampling.strata", f"'{sp.strata}' is not declared in this study; strata must be a declared column")
        for where, sizes in [("sampling.population", sp.population),
                             *((f"sampling.population_by_quarter.{q}", v) for q, v in sp.population_by_quarter.items())]:
            unknown = sorted(set(sizes) - set(declared.get(sp.strata or "", [])))
            if unknown:
                raise _KeyError(where, f"{unknown} are not values of {sp.strata}; expected ids among {declared[sp.strata]}")
        if sp.weight is not None and sp.weight in set(SURVEY_COLUMNS) | set(self.item_ids) | {o.column for o in self.outcomes}:
            raise _KeyError("sampling.weight", f"'{sp.weight}' is already a survey column of another kind; name the weight column")
        # the weight column is written to processed data: never a direct identifier or free text (customer_id would
        # pass raw), nor the name of a pseudonym column it would overwrite
        if sp.weight is not None and sp.weight in set(IDENTIFYING_COLUMNS) | {"respondent_pid", "customer_pid"}:
            raise _KeyError("sampling.weight", f"'{sp.weight}' is an identifier or free-text column, never written to "
                                               "processed data; name the survey's weight column")
        for i, m in enumerate(sp.rake):
            if m.column not in declared or not declared[m.column]:
                raise _KeyError(f"sampling.rake[{i}].column", f"'{m.column}' is not a declared survey column (branch_id, segment, channel)")
            unknown = sorted(set(m.shares) - set(declared[m.column]))
            missing = sorted(set(declared[m.column]) - set(m.shares))
            if unknown or missing:
                raise _KeyError(f"sampling.rake[{i}].shares", f"shares must name every value of {m.column} once "
                                                              f"(unknown: {unknown}, missing: {missing})")

    def _check_available(self, metric: str, loc: str) -> None:
        """A metric named by sqi/targets/measures must be computable from what the study declares."""
        o = self.questionnaire.outcomes
        if metric == "nps" and o.recommend is None:
            raise _KeyError(loc, "metric 'nps' needs the recommend outcome; declare questionnaire.outcomes.recommend "
                                 "or remove the metric")
        if metric == "nps" and (o.recommend.scale.min, o.recommend.scale.max) != (0, 10):
            raise _KeyError(loc, f"metric 'nps' needs recommend on the 0-10 scale (it is {o.recommend.scale.min:g}-"
                                 f"{o.recommend.scale.max:g}); the report shows the recommend top-2 share instead")
        if metric == "complaint_rate" and o.complaint is None:
            raise _KeyError(loc, "metric 'complaint_rate' needs the complaint outcome; declare "
                                 "questionnaire.outcomes.complaint or remove the metric")
        if metric in PROCESS_METRICS and not self.has_process:
            missing = [k for k, v in (("business_types", self.business_types), ("service_level", self.service_level)) if not v]
            raise _KeyError(loc, f"metric '{metric}' comes from process times, which this study does not declare "
                                 f"(missing: {', '.join(missing)}); declare them or remove the metric")

    # -- convenient views -------------------------------------------------------------------
    @property
    def has_process(self) -> bool:
        """Whether the study declares process times (business types and a service level)."""
        return bool(self.business_types) and self.service_level is not None

    @property
    def has_requests(self) -> bool:
        """Whether the study declares a service-request log (``service_requests``)."""
        return self.service_requests is not None

    @model_validator(mode="after")
    def _requests_consistent(self) -> "Study":
        """The service_requests section: unique ids, a denominator for complaints per million visits, measures
        on defined channels with metrics a before/after can compare."""
        if self.service_requests is not None:
            sr = self.service_requests
            _unique(sr.channels, "service_requests.channels")
            _unique(sr.complaint_grades, "service_requests.complaint_grades")
            hours = [t.hours for t in sr.response_targets]
            if len(set(hours)) != len(hours):
                raise _KeyError("service_requests.response_targets", f"a target's hours appear twice ({hours}); each target "
                                                                     "needs its own hours")
            if not sr.visits.queue_tickets and not sr.visits.digital_sessions:
                raise _KeyError("service_requests.visits", "no denominator for complaints per million visits: set "
                                                           "queue_tickets: true or give digital_sessions per quarter")
            if sr.visits.queue_tickets and not self.has_process:
                raise _KeyError("service_requests.visits.queue_tickets",
                                "visits count the queue tickets, but the study declares no process times "
                                "(business_types and service_level); declare them or set queue_tickets: false")
            _unique(sr.measures, "service_requests.measures")
            channel_ids = [c.id for c in sr.channels]
            for i, m in enumerate(sr.measures):
                for k, c in enumerate(m.channels):
                    if c not in channel_ids:
                        raise _KeyError(f"service_requests.measures[{i}].channels[{k}]",
                                        f"channel '{c}' is not defined under service_requests.channels; expected one of {channel_ids}")
                for k, metric in enumerate(m.metrics + [c.metric for c in m.claims]):
                    where = (f"service_requests.measures[{i}].metrics[{k}]" if k < len(m.metrics)
                             else f"service_requests.measures[{i}].claims[{k - len(m.metrics)}].metric")
                    if metric not in CHANNEL_MEASURE_METRICS:
                        raise _KeyError(where, f"'{metric}' cannot be compared before/after on channels; expected one of "
                                               f"{list(CHANNEL_MEASURE_METRICS)}")
                    if metric == "post_contact_rating" and sr.rating_scale is None:
                        raise _KeyError(where, "post_contact_rating needs service_requests.rating_scale")
        return self

    @model_validator(mode="after")
    def _magnitudes(self) -> "Study":
        """Counts and durations within what a bank can have (study.data.values.BOUNDS, raised under ``limits``)."""
        bounds = self.limits.bounds
        checks: list[tuple[str, object, str]] = []
        checks += [(f"branches[{i}].counters", b.counters, "max_counters") for i, b in enumerate(self.branches)]
        for i, b in enumerate(self.business_types):
            checks.append((f"business_types[{i}].standard_minutes", b.standard_minutes, "max_standard_minutes"))
            if b.ideal_cycle_minutes is not None:
                checks.append((f"business_types[{i}].ideal_cycle_minutes", b.ideal_cycle_minutes, "max_standard_minutes"))
        if self.service_requests is not None:
            sr = self.service_requests
            checks += [(f"service_requests.complaint_grades[{i}].deadline_hours", g.deadline_hours, "max_deadline_hours")
                       for i, g in enumerate(sr.complaint_grades)]
            checks += [(f"service_requests.response_targets[{i}].hours", t.hours, "max_deadline_hours")
                       for i, t in enumerate(sr.response_targets)]
            checks += [(f"service_requests.visits.digital_sessions.{q}", n, "max_sessions_per_quarter")
                       for q, n in sr.visits.digital_sessions.items()]
        if self.channel_coverage is not None:
            for q, c in self.channel_coverage.quarters.items():
                checks += [(f"channel_coverage.quarters.{q}.covered", c.covered, "max_units"),
                           (f"channel_coverage.quarters.{q}.total", c.total, "max_units")]
        for loc, value, name in checks:
            problem = values.magnitude_problem(value, name, bounds)
            if problem is not None:
                raise _KeyError(loc, problem)
        return self

    @model_validator(mode="after")
    def _points_consistent(self) -> "Study":
        """information_accuracy names a declared business type of a study with process times."""
        acc = self.information_accuracy
        if acc is not None:
            if not self.has_process:
                raise _KeyError("information_accuracy", "it is measured on the queue log, but the study declares no process "
                                                        "times (business_types and service_level)")
            if acc.business_type not in self.business_type_ids:
                raise _KeyError("information_accuracy.business_type",
                                f"business type '{acc.business_type}' is not defined under business_types; expected one of "
                                f"{self.business_type_ids}")
        return self

    @property
    def has_benchmark(self) -> bool:
        """Whether the study declares a competitor benchmark."""
        return self.benchmark is not None

    @property
    def outcomes(self) -> list[Outcome]:
        o = self.questionnaire.outcomes
        return [x for x in (o.overall_satisfaction, o.recommend, o.complaint) if x is not None]

    @property
    def item_ids(self) -> list[str]:
        return [i.id for i in self.questionnaire.items]

    @property
    def reverse_items(self) -> list[str]:
        return [i.id for i in self.questionnaire.items if i.reverse]

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.questionnaire.dimensions]

    @property
    def scales(self) -> dict[str, list[str]]:
        """Dimension id -> its item ids, in questionnaire order."""
        return {d: [i.id for i in self.questionnaire.items if i.dimension == d] for d in self.dimension_ids}

    @property
    def branch_ids(self) -> list[str]:
        return [b.id for b in self.branches]

    @property
    def business_type_ids(self) -> list[str]:
        return [b.id for b in self.business_types]

    def label(self, key: str, lang: str | None = None) -> str:
        """Human label of a dimension, item, branch, business type, segment, channel or metric id, in
        ``lang`` (default: the active report language, :func:`study.i18n.language`). A Chinese label
        that study.yml lacks shows the English one, marked (``validate`` warns about it)."""
        from study import i18n

        lang = lang or i18n.language()
        if lang != "en":
            shown = self.label(key, "en")
            other = self._label_zh(key)
            if other:
                return other
            return i18n.untranslated(shown) if shown != key else shown
        return self._label_en(key)

    def _label_zh(self, key: str) -> str:
        pools = [self.questionnaire.dimensions, self.questionnaire.items, self.segments, self.channels,
                 self.ticket_channels, self.business_types, self.sqi,
                 self.benchmark.metrics if self.benchmark is not None else [],
                 self.service_requests.channels if self.service_requests is not None else [],
                 self.service_requests.complaint_grades if self.service_requests is not None else []]
        for pool in pools:
            for x in pool:
                if x.id == key:
                    return getattr(x, "label_zh", "") or ""
        for b in self.branches:
            if b.id == key:
                return b.name_zh or ""
        from study import metrics as mx

        if key in mx.registry(self) or key == "sqi":
            m = mx.lookup(key, self)
            return m.label_zh or ""
        return ""

    def _label_en(self, key: str, lang: str = "en") -> str:
        pools = [self.questionnaire.dimensions, self.questionnaire.items, self.segments, self.channels,
                 self.ticket_channels, self.business_types, self.sqi,
                 self.benchmark.metrics if self.benchmark is not None else [],
                 self.service_requests.channels if self.service_requests is not None else [],
                 self.service_requests.complaint_grades if self.service_requests is not None else []]
        for pool in pools:
            for x in pool:
                if x.id == key:
                    return (getattr(x, "label_zh", "") or x.label) if lang == "zh" else x.label
        for b in self.branches:
            if b.id == key:
                return (b.name_zh or b.name) if lang == "zh" else b.name
        from study import metrics as mx  # the metric registry states metric labels (on the study's own scales)

        return mx.lookup(key, self).label_in(lang) if key in mx.registry(self) or key == "sqi" else key

    def missing_translations(self) -> list[str]:
        """The study.yml texts the Chinese report shows that have no ``*_zh`` (each shown in English,
        marked); ``validate`` and ``prepare`` warn about them."""
        out = []
        if not self.name_zh:
            out.append("name_zh")
        if self.organisation and not self.organisation_zh:
            out.append("organisation_zh")
        groups = [("questionnaire.dimensions", self.questionnaire.dimensions, "label"),
                  ("questionnaire.items", self.questionnaire.items, "label"), ("segments", self.segments, "label"),
                  ("channels", self.channels, "label"), ("ticket_channels", self.ticket_channels, "label"),
                  ("business_types", self.business_types, "label"), ("sqi", self.sqi, "label"),
                  ("targets", self.targets, "label"), ("branches", self.branches, "name"), ("measures", self.measures, "name"),
                  ("benchmark.metrics", self.benchmark.metrics if self.benchmark is not None else [], "label")]
        for where, pool, field in groups:
            for x in pool:
                if getattr(x, field, "") and not getattr(x, f"{field}_zh", ""):
                    out.append(f"{where}[{x.id}].{field}_zh")
        for m in self.measures:
            if m.description and not m.description_zh:
                out.append(f"measures[{m.id}].description_zh")
        if self.service_requests is not None:   # the request log's names (issue 12)
            sr = self.service_requests
            for where, pool, field in (("service_requests.channels", sr.channels, "label"),
                                       ("service_requests.complaint_grades", sr.complaint_grades, "label"),
                                       ("service_requests.measures", sr.measures, "name")):
                for x in pool:
                    if getattr(x, field, "") and not getattr(x, f"{field}_zh", ""):
                        out.append(f"{where}[{x.id}].{field}_zh")
            for m in sr.measures:
                if m.description and not m.description_zh:
                    out.append(f"service_requests.measures[{m.id}].description_zh")
                out += [f"service_requests.measures[{m.id}].claims[{c.id}].label_zh" for c in m.claims if not c.label_zh]
                out += [f"service_requests.measures[{m.id}].phases[{p.quarter}].label_zh" for p in m.phases if not p.label_zh]
        if self.channel_coverage is not None and not self.channel_coverage.unit_zh:
            out.append("channel_coverage.unit_zh")
        if self.benchmark is not None:
            from study import i18n

            if not self.benchmark.our_bank_zh:
                out.append("benchmark.our_bank_zh")
            with i18n.use("zh"):   # a unit word the catalogue knows ("min", "count") needs no unit_zh
                out += [f"benchmark.metrics[{m.id}].unit_zh" for m in self.benchmark.metrics
                        if m.unit and not m.unit_zh and i18n.tr_known(m.unit, "unit") == m.unit and m.unit != "%"]
        return out

    def missing_bank_names(self, banks) -> list[str]:
        """The banks of a benchmark file (names as in the data) without a Chinese name in study.yml
        (``benchmark.our_bank_zh``, ``benchmark.banks_zh``); ``validate`` warns about each."""
        if self.benchmark is None:
            return []
        b = self.benchmark
        return sorted({str(x) for x in banks if str(x) != b.our_bank and str(x) not in b.banks_zh})

    def bank_name(self, name: str, lang: str | None = None) -> str:
        """A bank of the benchmark as the report names it: in Chinese ``our_bank_zh`` or ``banks_zh``, a name without
        one shown in English, marked."""
        from study import i18n

        lang = lang or i18n.language()
        name = str(name)
        if lang == "en" or self.benchmark is None:
            return name
        b = self.benchmark
        other = b.our_bank_zh if name == b.our_bank else b.banks_zh.get(name, "")
        return other or i18n.untranslated(name)

    def benchmark_unit(self, metric) -> str:
        """A benchmark metric's unit in the active language (``unit_zh``, else the catalogue's word, else as written)."""
        from study import i18n

        if i18n.language() == "zh" and metric.unit_zh:
            return metric.unit_zh
        return i18n.tr_known(metric.unit, "unit") if metric.unit else ""

    def branch_groups(self, measure_id: str) -> dict[str, str]:
        """Branch id -> 'pilot' / 'control' / 'other' for one improvement measure."""
        m = next((m for m in self.measures if m.id == measure_id), None)
        if m is None:
            raise KeyError(f"no measure '{measure_id}' in the study definition")
        return {b: "pilot" if b in m.pilot else "control" if b in m.control else "other" for b in self.branch_ids}


# Fixed survey columns (besides item and outcome columns).
SURVEY_COLUMNS = ("respondent_id", "branch_id", "segment", "channel", "interview_date")
# Direct identifiers and free text: accepted on input, never written to processed data.
IDENTIFYING_COLUMNS = ("customer_id", "phone", "id_number", "comment")


#: Request metrics a channel measure compares before/after its start (per request: a duration or a rating).
CHANNEL_MEASURE_METRICS = ("request_first_response_minutes", "request_resolution_minutes", "post_contact_rating")


def _request_metric_ids(study: "Study") -> list[str]:
    """The request-log metric ids this study defines (none without a service_requests section)."""
    if study.service_requests is None:
        return []
    from study import metrics as mx

    return [k for k, m in mx.registry(study).items() if m.source == "requests"]


def _point_metric_ids(study: "Study") -> list[str]:
    """Seed §5's metrics this study declares: channel_coverage, information_accuracy."""
    return [m for m, sec in (("channel_coverage", study.channel_coverage), ("information_accuracy", study.information_accuracy))
            if sec is not None]


class _KeyError(ValueError):
    """A cross-field error that knows its key path."""

    def __init__(self, loc: str, msg: str):
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _unique(entries, where: str) -> None:
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.id in seen:
            raise _KeyError(f"{where}[{i}].id", f"id '{e.id}' appears twice; ids must be unique")
        seen.add(e.id)


def _check_weights(weights: list[float], where: str) -> None:
    total = sum(weights)
    if not abs(total - 1.0) <= 1e-6:   # also NaN and infinite weights (a YAML .nan compares false with everything)
        raise _KeyError(where, f"weights sum to {total:.6g}; they must sum to 1")


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# study.yml bounds: a real study definition is a few hundred lines, a few levels deep. These
# stop a hostile or mistaken file (tens of MB, thousands of levels, alias bombs) before it can
# exhaust time or memory, and keep the error message readable.
MAX_STUDY_BYTES = 1 << 20         # 1 MiB
MAX_STUDY_DEPTH = 20              # nesting levels of mappings and lists
MAX_STUDY_NODES = 200_000         # values after expanding YAML aliases
MAX_PROBLEMS_SHOWN = 20


def _flow_depth(data: bytes) -> int:
    """Upper bound of the bracket nesting in YAML text (quotes ignored, so it may over-count)."""
    import numpy as np

    b = np.frombuffer(data, dtype=np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int32) - np.isin(b, (ord("]"), ord("}"))).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def _yaml_shape(raw) -> tuple[int, int]:
    """(depth, node count) of a loaded YAML tree, counting aliases as often as they are used.

    Iterative and memoised by object id, so neither deep nesting nor an alias bomb (a list of
    ten aliases to a list of ten aliases ...) can make the measurement itself blow up.
    """
    memo: dict[int, tuple[int, int]] = {}
    stack: list[tuple[object, bool]] = [(raw, False)]
    while stack:
        node, expanded = stack.pop()
        if not isinstance(node, (dict, list)) or id(node) in memo:
            continue
        children = list(node.values()) if isinstance(node, dict) else node
        if not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in memo)
            if len(stack) > 10 * MAX_STUDY_NODES:
                return MAX_STUDY_DEPTH + 1, MAX_STUDY_NODES + 1
            continue
        depth, count = 1, 1 + len(children)
        for c in children:
            if isinstance(c, (dict, list)):
                cd, cc = memo.get(id(c), (MAX_STUDY_DEPTH + 1, MAX_STUDY_NODES + 1))  # a cycle counts as too deep
                depth, count = max(depth, cd + 1), count + cc
        memo[id(node)] = (min(depth, MAX_STUDY_DEPTH + 1), min(count, MAX_STUDY_NODES + 1))
    return memo.get(id(raw), (0, 1))


#: An id (of an item, dimension, branch, segment, channel, business type, metric, measure or target) is a
#: letter or digit followed by letters, digits, "_", "." or "-" (any script's letters), at most 64 characters:
#: ids become column names, SQL literals, file-name parts and anchors, so they carry no quotes, spaces,
#: slashes, brackets or markup. Anchored with ``\Z`` (a "$" would let a trailing newline through).
ID_PATTERN = re.compile(r"^[^\W_][\w.\-]{0,63}\Z")
#: The longest label, name or description the report will print (a longer one is a mistake, not a label).
MAX_TEXT_CHARS = 2000


def _text_problems(raw, loc: str = "") -> list[tuple[str, str]]:
    """Ids that do not match :data:`ID_PATTERN`; text with control, bidirectional-override or invisible characters
    (the rules of :mod:`study.data.values`, which data values follow too), or longer than :data:`MAX_TEXT_CHARS`.
    Each with its key path."""
    out: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for k, v in raw.items():
            where = f"{loc}.{k}" if loc else str(k)
            if isinstance(k, str) and (values.refused_char(k) or values.invisible_char(k)):
                out.append((values.escape(where), "the key contains a control, text-direction or invisible character; retype it"))
                continue
            if k == "id" and isinstance(v, (str, int)) and not ID_PATTERN.fullmatch(str(v)):
                out.append((where, f"id {values.shown(v, 40)} is not allowed: use letters, digits, '_', '.' or '-' (at most 64, "
                                   "starting with a letter or digit)"))
                continue
            out += _text_problems(v, where)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            out += _text_problems(v, f"{loc}[{i}]")
    elif isinstance(raw, str):
        bad = values.refused_char(raw, yaml=True)
        hidden = values.invisible_char(raw)
        if bad is not None:
            out.append((loc, f"contains the control or text-direction character {values.codepoint(bad)}; "
                             "remove it (it would print invisibly or reorder the text)"))
        elif hidden is not None:
            out.append((loc, f"contains the invisible character {values.codepoint(hidden)} (zero-width, soft hyphen, line "
                             "separator or tag character, usually pasted from a web page); retype the text without it"))
        elif len(raw) > MAX_TEXT_CHARS:
            out.append((loc, f"is {len(raw):,} characters long; at most {MAX_TEXT_CHARS:,} are printed. Shorten it."))
    return out


def load_study(path: Path | str | None = None) -> Study:
    """Read and validate a study definition.

    Raises
    ------
    StudyDefinitionError
        The file is missing, is not YAML, is too large or too deeply nested, or breaks a rule; the
        message names the file, the key path and what is expected (the first
        ``MAX_PROBLEMS_SHOWN`` problems, then how many more).
    """
    path = Path(path) if path is not None else DEFAULT_STUDY_FILE
    if not path.is_file():
        raise StudyDefinitionError(f"{path}: study definition not found. Pass --study FILE, or copy study.yml from the repository and edit it.")
    try:
        size = path.stat().st_size
        if size > MAX_STUDY_BYTES:
            raise StudyDefinitionError(f"{path}: is {size:,} bytes; a study definition may be at most {MAX_STUDY_BYTES:,} bytes "
                                       "(1 MiB). Check that --study points at the study definition, not at a data file.")
        with open(path, "rb") as fh:
            data = fh.read(MAX_STUDY_BYTES + 1)
    except OSError as exc:
        raise StudyDefinitionError(f"{path}: cannot be read ({exc.strerror or exc}). Check the path and its permissions.") from None
    # libyaml's C loader is fast but nests on the C stack: deep flow brackets ([[[[...) crash the
    # interpreter instead of raising. Where brackets may nest deeply, the pure-Python loader is
    # used, whose recursion limit becomes the error below.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if _flow_depth(data) <= 2 * MAX_STUDY_DEPTH else yaml.SafeLoader
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=loader)  # a safe loader (yaml.load with an explicit Loader)
    except UnicodeDecodeError:
        raise StudyDefinitionError(f"{path}: is not UTF-8 text. Save the study definition as UTF-8.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise StudyDefinitionError(f"{path}: is not valid YAML{where}: {getattr(exc, 'problem', exc)}. "
                                   "Fix the syntax (indentation, quotes, colons).") from None
    except (RecursionError, MemoryError):
        raise StudyDefinitionError(f"{path}: is nested too deeply to read; a study definition has at most "
                                   f"{MAX_STUDY_DEPTH} levels of nesting.") from None
    if not isinstance(raw, dict):
        raise StudyDefinitionError(f"{path}: expected a mapping of keys (name, questionnaire, branches, ...) at the top level.")
    depth, nodes = _yaml_shape(raw)
    if depth > MAX_STUDY_DEPTH:
        raise StudyDefinitionError(f"{path}: is nested more than {MAX_STUDY_DEPTH} levels deep; a study definition needs a few. "
                                   "Check the indentation, and remove brackets that nest lists inside lists.")
    if nodes > MAX_STUDY_NODES:
        raise StudyDefinitionError(f"{path}: holds more than {MAX_STUDY_NODES:,} values once YAML aliases (*name) are expanded. "
                                   "Write the lists out, or remove the aliases that repeat other aliases.")
    text_problems = _text_problems(raw)
    if text_problems:
        more = f"\n  ... and {len(text_problems) - MAX_PROBLEMS_SHOWN:,} more" if len(text_problems) > MAX_PROBLEMS_SHOWN else ""
        raise StudyDefinitionError(f"{path}: the study definition has {len(text_problems):,} problem(s):\n"
                                   + "\n".join(f"  {_shorten(loc)}: {msg}" for loc, msg in text_problems[:MAX_PROBLEMS_SHOWN]) + more)
    try:
        return Study.model_validate(raw)
    except RecursionError:
        raise StudyDefinitionError(f"{path}: is nested too deeply to validate.") from None
    except ValidationError as exc:
        lines = []
        errors = exc.errors()
        for err in errors[:MAX_PROBLEMS_SHOWN]:
            ctx_err = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_err, _KeyError):
                loc, msg = ctx_err.loc, ctx_err.msg
            else:
                loc = _format_loc(err["loc"])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = "unknown key; remove it or check its spelling"
                elif err["type"] == "missing":
                    msg = "required key is missing"
                msg = msg.removeprefix("Value error, ")
            lines.append(f"  {_shorten(loc)}: {_shorten(msg, 300)}")
        if len(errors) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(errors) - MAX_PROBLEMS_SHOWN:,} more")
        raise StudyDefinitionError(f"{path}: the study definition has {len(errors):,} problem(s):\n" + "\n".join(lines)) from None


def _shorten(text: str, limit: int = 120) -> str:
    """A key path or message cut to ``limit`` characters (a hostile key may be megabytes long)."""
    return text if len(text) <= limit else text[:limit] + "…"


def check_quarter(quarter: str) -> str:
    """``quarter`` if it has the form 2025Q1; otherwise a :class:`~study.errors.StudyError`.

    Quarters name folders under ``data/raw`` and ``data/processed``; the fixed pattern keeps
    them there (no ``../``, no absolute paths, no separators).
    """
    from study.errors import StudyError

    if not isinstance(quarter, str) or not QUARTER_PATTERN.fullmatch(quarter):
        shown = _shorten(repr(quarter), 60)
        raise StudyError(f"quarter {shown} is not of the form 2025Q1 (four-digit year, Q, 1-4). "
                         "Pass --quarter with the name of a folder under data/raw.")
    return quarter


def quarter_dirs(data_dir: Path | str, kind: str = "raw") -> list[str]:
    """Quarters (folder names like 2025Q1) present under ``data_dir/kind``, oldest first."""
    base = Path(data_dir) / kind
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and QUARTER_PATTERN.match(p.name))


def quarter_bounds(quarter: str) -> tuple[dt.date, dt.date]:
    """First and last day of a quarter such as '2025Q2'."""
    m = QUARTER_PATTERN.match(quarter)
    if not m:
        raise ValueError(f"'{quarter}' is not a quarter; expected the form 2025Q1")
    year, q = int(m.group(1)), int(m.group(2))
    start = dt.date(year, 3 * q - 2, 1)
    end = dt.date(year + (q == 4), (3 * q) % 12 + 1, 1) - dt.timedelta(days=1)
    return start, end
