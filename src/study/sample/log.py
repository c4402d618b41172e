"""A large, realistic processed queue-ticket log, streamed to Parquet in chunks.

``write_process_log(study, data_dir, quarter, n_tickets)`` writes
``DATA_DIR/processed/<QUARTER>/process_times/part-00000.parquet, part-00001.parquet, ...`` in the
*processed* schema (the one ``study prepare`` writes: ``ticket_pid, branch_id, business_type,
counter_id, channel, issued_at, called_at, started_at, finished_at, first_pass,
waiting_minutes, handling_minutes, cycle_minutes, customer_pid``) so that the process-time
chapter (:mod:`study.stats.process`) and the benchmarks can be tried at a large bank's scale
(10^8 tickets a quarter) without going through raw CSV files.

How a ticket is drawn (every number comes from ``study.yml`` or from the source digest):

* **arrival** — tickets arrive on Monday–Saturday within the opening hours
  (``service_level.opening_hours``); the intensity has a morning and an afternoon peak and a
  lunchtime dip, Mondays are busier and Saturdays quieter. Arrival times are drawn as uniform
  order statistics in "cumulative intensity" space (normalised cumulative sums of exponential
  gaps, O(n) and already sorted), so the log is in time order, as a queue system writes it;
* **branch** — proportional to its number of counters; **business type** — a fixed mix
  (deposits most frequent); **channel** — walk-in 75 % / appointment 25 % (the first two
  ``ticket_channels``);
* **handling time** — log-normal (sigma 0.45) around the digest's *actual* minutes: account
  opening 25, deposit 18, loan enquiry 9, wealth management 20, customer-information
  verification 30 (unknown types: 1.6 x their standard minutes);
* **waiting time** — log-normal (sigma 0.8) around a mean of about 6 minutes that grows with the
  hour's load; appointments wait half as long; branch-week noise; with ``pilot_effect`` the
  waiting of tickets in the pilot branches of every measure falls by ``pilot_effect`` (default
  20 %) from the measure's start date on, the control branches stay as they were;
* **counter** — one of the counters open in that hour (more counters at peak hours);
* **first pass** — Bernoulli(0.82) (the digest's first-pass yield of 82 %);
* timestamps are whole seconds (what queue systems record); called = issued + waiting,
  started = called + 0-60 s walk to the counter, finished = started + handling.

Speed and memory: each chunk is generated with vectorised numpy and written as one Parquet
part (pyarrow, zstd), so memory stays bounded by ``chunk_rows`` whatever ``n_tickets`` is.
String columns are written from dictionary indices (branch, type, counter, channel, customer)
and from fixed-width byte buffers (ticket id), never from Python strings.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from study.data.config import Study, quarter_bounds
from study.progress import bar

# Digest (section 1): actual handling minutes per business type ("standard vs actual" table and
# "handling time by business type" table; information verification from its 48-min cycle).
ACTUAL_HANDLING_MINUTES = {"account_opening": 25.0, "deposit": 18.0, "loan_enquiry": 9.0,
                           "wealth_management": 20.0, "info_verification": 30.0}
BUSINESS_MIX = {"deposit": 0.40, "account_opening": 0.15, "loan_enquiry": 0.15,
                "wealth_management": 0.15, "info_verification": 0.15}
FIRST_PASS_YIELD = 0.82            # digest: FPY 82 %
MEAN_WAITING_MINUTES = 6.0         # digest: average waiting time of about 5-6 min (SQI example)
WAITING_SIGMA = 0.8
HANDLING_SIGMA = 0.45
APPOINTMENT_SHARE = 0.25
MAX_WAITING_MINUTES = 240.0
CUSTOMER_POOL = 200_000            # distinct customers at most (repeat visits are realistic)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

SCHEMA = pa.schema([
    ("ticket_pid", pa.string()), ("branch_id", pa.string()), ("business_type", pa.string()),
    ("counter_id", pa.string()), ("channel", pa.string()),
    ("issued_at", pa.timestamp("us")), ("called_at", pa.timestamp("us")),
    ("started_at", pa.timestamp("us")), ("finished_at", pa.timestamp("us")),
    ("first_pass", pa.bool_()),
    ("waiting_minutes", pa.float64()), ("handling_minutes", pa.float64()), ("cycle_minutes", pa.float64()),
    ("customer_pid", pa.string()),
])


def hour_profile(hours: np.ndarray) -> np.ndarray:
    """Relative arrival intensity by hour of day: peaks at 10-11 h and 15 h, a dip at lunch."""
    h = hours + 0.5
    return (1.0 + 0.7 * np.exp(-((h - 10.5) / 1.2) ** 2) + 0.5 * np.exp(-((h - 15.0) / 1.2) ** 2)
            - 0.35 * np.exp(-((h - 12.5) / 0.8) ** 2))


def _fixed_width_strings(data: np.ndarray) -> pa.Array:
    """A pyarrow string array from an (n, width) uint8 matrix of ASCII bytes, without Python strings."""
    n, width = data.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32 if (n + 1) * width < 2**31 else np.int64)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    arr = pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))])
    return arr.cast(pa.string()) if typ != pa.string() else arr


_FOUR_DIGITS = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint32)


def _ticket_ids(quarter: str, start: int, n: int, width: int) -> pa.Array:
    """``T<quarter>-<number>`` with the number zero-padded to ``width`` (a multiple of 4) digits.

    Built as uint32 words: the 8-byte prefix, then one word per 4 digits from a 10,000-entry table.
    """
    prefix = f"T{quarter}-".encode()
    if len(prefix) % 4:
        prefix = prefix.rjust(len(prefix) + 4 - len(prefix) % 4, b"T")
    groups = width // 4
    words = np.empty((n, len(prefix) // 4 + groups), dtype=np.uint32)
    words[:, :len(prefix) // 4] = np.frombuffer(prefix, dtype=np.uint32)
    v = np.arange(start + 1, start + n + 1, dtype=np.int64)
    for j in range(words.shape[1] - 1, len(prefix) // 4 - 1, -1):
        q = v // 10_000
        words[:, j] = _FOUR_DIGITS[v - q * 10_000]
        v = q
    return _fixed_width_strings(words.view(np.uint8))


def _gather_rows(rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """rows[idx] for an (m, w) uint8 matrix, done as a 1-D gather of w-byte records (much faster)."""
    w = rows.shape[1]
    return rows.view(np.dtype((np.void, w))).ravel()[idx].view(np.uint8).reshape(len(idx), w)


def _customer_pool(size: int, rng: np.random.Generator) -> pa.Array:
    """``size`` pseudonyms of 20 hex digits (the processed data's customer_pid format)."""
    nib = rng.integers(0, 16, size=(size, 20), dtype=np.uint8)
    return _fixed_width_strings(_HEX[nib])


def _open_slots(study: Study, quarter: str) -> tuple[np.ndarray, np.ndarray]:
    """Start (epoch seconds) and relative weight of every open hour of the quarter."""
    first, last = quarter_bounds(quarter)
    oh = study.service_level.opening_hours
    hours = np.arange(oh.open, oh.close)
    prof = hour_profile(hours)
    starts, weights = [], []
    day = first
    epoch = dt.date(1970, 1, 1)
    while day <= last:
        wd = day.weekday()
        if wd < 6:  # Sunday closed
            dw = 1.2 if wd == 0 else 0.7 if wd == 5 else 1.0
            base = (day - epoch).days * 86400
            starts.append(base + hours * 3600)
            weights.append(prof * dw)
        day += dt.timedelta(days=1)
    return np.concatenate(starts).astype(np.int64), np.concatenate(weights)


def _lookup(p: np.ndarray, size: int = 4096) -> np.ndarray:
    """A table of ``size`` codes whose frequencies follow ``p`` (for a fast categorical draw by gather)."""
    edges = np.cumsum(p) / np.sum(p)
    return np.minimum(np.searchsorted(edges, (np.arange(size) + 0.5) / size, side="right"), len(p) - 1).astype(np.int32)


class _Plan:
    """Everything a worker needs to generate one part; built once from the study definition."""

    def __init__(self, study: Study, quarter: str, n_tickets: int, seed: int, chunk_rows: int,
                 pilot_effect: float | None, customer_pool: int):
        self.quarter, self.n_tickets, self.seed, self.chunk_rows = quarter, n_tickets, seed, chunk_rows
        rng = np.random.default_rng(seed)
        self.slot_start, slot_w = _open_slots(study, quarter)
        cum_w = np.cumsum(slot_w)
        self.cum_w = cum_w / cum_w[-1]
        self.cum_prev = np.concatenate([[0.0], self.cum_w[:-1]])
        oh = study.service_level.opening_hours
        self.n_hours = oh.close - oh.open
        load = hour_profile(np.arange(oh.open, oh.close))
        self.load = load / load.mean()                      # 1 = average hour

        branches = study.branches
        self.b_ids = [b.id for b in branches]
        b_counters = np.array([b.counters for b in branches])
        self.b_table = _lookup(b_counters.astype(float))   # branch weight = its counters
        open_c = np.round(b_counters[:, None] * (0.55 + 0.45 * self.load[None, :] / self.load.max()))
        self.open_counters = np.clip(np.minimum(open_c, b_counters[:, None]), 1, None).astype(np.float64)
        self.counter_labels = [f"{b.id}-C{k:02d}" for b in branches for k in range(1, b.counters + 1)]
        self.counter_offset = np.concatenate([[0], np.cumsum(b_counters)[:-1]]).astype(np.int32)

        types = study.business_types
        self.t_ids = [t.id for t in types]
        self.t_table = _lookup(np.array([BUSINESS_MIX.get(t.id, 0.15) for t in types]))
        handling_mean = np.array([ACTUAL_HANDLING_MINUTES.get(t.id, 1.6 * t.standard_minutes) for t in types])
        self.handling_mu = np.log(handling_mean) - HANDLING_SIGMA ** 2 / 2   # log-normal with mean m

        channels = [c.id for c in study.ticket_channels][:2] or ["walk_in", "appointment"]
        self.channels = channels * 2 if len(channels) == 1 else channels

        first_day, last_day = quarter_bounds(quarter)
        self.q_start_s = (first_day - dt.date(1970, 1, 1)).days * 86400
        n_weeks = (last_day - first_day).days // 7 + 1
        self.week_noise = 1.0 + rng.normal(0.0, 0.06, size=(len(branches), n_weeks))
        self.effect_from = np.full(len(branches), np.iinfo(np.int64).max, dtype=np.int64)
        self.pilot_effect = float(pilot_effect or 0.0)
        if self.pilot_effect:
            for m in study.measures:
                start_s = (m.start - dt.date(1970, 1, 1)).days * 86400
                for b in m.pilot:
                    i = self.b_ids.index(b)
                    self.effect_from[i] = min(self.effect_from[i], start_s)
        self.pool_size = int(min(customer_pool, max(1000, n_tickets // 3)))
        self.customers = np.ascontiguousarray(_HEX[rng.integers(0, 16, size=(self.pool_size, 20), dtype=np.uint8)])
        self.width = 4 * max(2, math.ceil(len(str(n_tickets)) / 4))

    def table(self, part: int) -> pa.Table:
        lo = part * self.chunk_rows
        n = min(self.chunk_rows, self.n_tickets - lo)
        rng = np.random.default_rng([self.seed, part])
        # arrival times: sorted uniforms in [lo/N, (lo+n)/N) of cumulative intensity, mapped to open hours
        gaps = rng.standard_exponential(n + 1)
        u = np.cumsum(gaps)[:-1]
        u *= (n / self.n_tickets) / (u[-1] + gaps[-1])
        u += lo / self.n_tickets
        s = np.searchsorted(self.cum_w, u, side="right")
        np.minimum(s, len(self.cum_w) - 1, out=s)
        u -= self.cum_prev[s]
        u /= (self.cum_w - self.cum_prev)[s]
        u *= 3600.0
        issued_s = self.slot_start[s] + np.minimum(u.astype(np.int64), 3599)
        hour_idx = s % self.n_hours
        del gaps, u, s
        # categorical draws by table gather
        b = self.b_table[rng.integers(0, len(self.b_table), n, dtype=np.int32)]
        t = self.t_table[rng.integers(0, len(self.t_table), n, dtype=np.int32)]
        appt = rng.random(n, dtype=np.float32) < APPOINTMENT_SHARE
        counter = (rng.random(n) * self.open_counters[b, hour_idx]).astype(np.int32)
        counter += self.counter_offset[b]
        first_pass = rng.random(n, dtype=np.float32) < FIRST_PASS_YIELD
        # durations, whole seconds
        week = (issued_s - self.q_start_s) // (7 * 86400)
        lw = np.log(MEAN_WAITING_MINUTES * self.load ** 1.5) - WAITING_SIGMA ** 2 / 2
        logw = lw[hour_idx]
        logw += np.log(self.week_noise)[b, week]
        logw[appt] += math.log(0.5)
        if self.pilot_effect:
            logw[issued_s >= self.effect_from[b]] += math.log(1.0 - self.pilot_effect)
        z = rng.standard_normal(n)
        z *= WAITING_SIGMA
        z += logw
        wait_s = np.rint(np.minimum(np.exp(z), MAX_WAITING_MINUTES) * 60.0).astype(np.int64)
        rng.standard_normal(n, out=z)
        z *= HANDLING_SIGMA
        z += self.handling_mu[t]
        hand_s = np.maximum(np.rint(np.exp(z) * 60.0), 30.0).astype(np.int64)
        del z, logw, week
        called_s = issued_s + wait_s
        started_s = called_s + rng.integers(0, 61, n, dtype=np.int64)
        finished_s = started_s + hand_s
        cust = _gather_rows(self.customers, rng.integers(0, self.pool_size, n, dtype=np.int32))

        def ts(x: np.ndarray) -> pa.Array:
            return pa.array(x * 1_000_000, type=pa.timestamp("us"))

        def dict_arr(idx: np.ndarray, labels: list[str]) -> pa.Array:
            return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32, copy=False)), pa.array(labels, type=pa.string()),
                                                safe=False)  # indices are in range by construction

        return pa.Table.from_arrays([
            _ticket_ids(self.quarter, lo, n, self.width),
            dict_arr(b, self.b_ids), dict_arr(t, self.t_ids), dict_arr(counter, self.counter_labels),
            dict_arr(appt.view(np.int8), self.channels),
            ts(issued_s), ts(called_s), ts(started_s), ts(finished_s),
            pa.array(first_pass),
            pa.array(wait_s / 60.0), pa.array(hand_s / 60.0), pa.array((finished_s - issued_s) / 60.0),
            _fixed_width_strings(cust),
        ], names=SCHEMA.names)


PARQUET_OPTIONS = dict(
    compression="zstd", compression_level=1, store_schema=False,
    use_dictionary=["branch_id", "business_type", "counter_id", "channel"],
    column_encoding={"ticket_pid": "DELTA_BYTE_ARRAY",
                     **{c: "DELTA_BINARY_PACKED" for c in ("issued_at", "called_at", "started_at", "finished_at")},
                     **{c: "BYTE_STREAM_SPLIT" for c in ("waiting_minutes", "handling_minutes", "cycle_minutes")}},
    write_statistics=["issued_at", "branch_id", "business_type", "waiting_minutes", "handling_minutes", "cycle_minutes"],
)


def _write_part(plan: _Plan, part: int, out: Path, row_group_rows: int) -> int:
    table = plan.table(part)
    path = out / f"part-{part:05d}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_rows, **PARQUET_OPTIONS)
    tmp.replace(path)
    return table.num_rows


_WORKER_PLAN: _Plan | None = None


def _worker_init(plan: _Plan) -> None:
    global _WORKER_PLAN
    _WORKER_PLAN = plan


def _worker_part(args: tuple[int, str, int]) -> int:
    part, out, rg = args
    assert _WORKER_PLAN is not None
    return _write_part(_WORKER_PLAN, part, Path(out), rg)


def write_process_log(study: Study, data_dir: Path | str, quarter: str, n_tickets: int, seed: int = 0,
                      chunk_rows: int = 5_000_000, progress: bool = True,
                      pilot_effect: float | None = 0.20, workers: int = 1, row_group_rows: int = 1_000_000,
                      customer_pool: int = CUSTOMER_POOL) -> Path:
    """Stream ``n_tickets`` processed tickets of ``quarter`` as Parquet parts; return the folder.

    Parameters
    ----------
    study : the study definition (branches, counters, business types, opening hours, measures).
    data_dir : the data folder; parts go to ``data_dir/processed/<quarter>/process_times/``
        (existing ``part-*.parquet`` files there are removed first).
    quarter : e.g. ``"2025Q1"``.
    n_tickets : number of tickets (any size: memory is bounded by ``chunk_rows`` per worker).
    seed : the random seed; the same arguments give the same files (whatever ``workers`` is).
    chunk_rows : tickets per part file.
    progress : show a progress bar (tickets written) on stderr when it is a terminal
        (:mod:`study.progress`); False: never.
    pilot_effect : relative drop of waiting time in the pilot branches of every measure from its
        start date (0.20 = -20 %); ``None`` or 0 for no effect.
    workers : processes writing parts in parallel (1 = in this process).
    """
    if n_tickets <= 0:
        raise ValueError(f"n_tickets must be positive, got {n_tickets}")
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    out = Path(data_dir) / "processed" / quarter / "process_times"
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("part-*.parquet")) + list(out.glob("part-*.parquet.tmp")):
        old.unlink()
    plan = _Plan(study, quarter, n_tickets, seed, chunk_rows, pilot_effect, customer_pool)
    n_parts = math.ceil(n_tickets / chunk_rows)
    with bar(total=n_tickets, desc=f"sample log {quarter}", unit="ticket", unit_scale=True,
             disable=None if progress else True) as shown:
        if workers <= 1 or n_parts == 1:
            for part in range(n_parts):
                shown.update(_write_part(plan, part, out, row_group_rows))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                     initargs=(plan,)) as ex:
                for rows in ex.map(_worker_part, [(p, str(out), row_group_rows) for p in range(n_parts)]):
                    shown.update(rows)
    return out
