"""Benchmark: bootstrapped Cronbach's α, ours (vectorised BCa) vs pingouin and R psych::alpha.

Workload (issue 3): 100,000 respondents x 30 items in 5 scales of 6 items, 2,000 bootstrap
resamples per scale. ``study.stats.reliability.scale_reliability(ci="bootstrap")`` is timed on the full
workload (α and BCa only, ω and the CFA off: the competitors compute neither). The competitors are
too slow to run 2,000 resamples, so they are timed on a few and extrapolated linearly:

- pingouin: ``pingouin.cronbach_alpha(data.iloc[idx])`` in a Python loop over resamples
  (the way one bootstraps it), ``n_pg`` resamples per scale, time x 2000 / n_pg;
- R: ``psych::alpha(d, n.iter = K)`` per scale via Rscript; the per-resample cost is
  ``(t(K) − t(1)) / (K − 1)``, so ``t(2000) ≈ t(1) + 1999 · (t(K) − t(1)) / (K − 1)``
  (data reading excluded).

Read the ratios; absolute seconds depend on the machine's load.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_SCALES, K_ITEMS = 5, 6


def _data(n: int, seed: int = 7) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    rng = np.random.default_rng(seed)
    cols, scales = {}, {}
    for s in range(N_SCALES):
        f = rng.normal(size=n)
        names = [f"s{s + 1}_{i + 1}" for i in range(K_ITEMS)]
        scales[f"scale{s + 1}"] = names
        for j, name in enumerate(names):
            lam = 0.6 + 0.05 * j
            latent = 3.4 + lam * f + rng.normal(scale=0.8, size=n)
            cols[name] = np.clip(np.rint(latent), 1, 5).astype(np.int8)
    return pd.DataFrame(cols), scales


def _time_ours(data, scales, n_boot) -> float:
    from study.stats.reliability import scale_reliability

    t0 = time.perf_counter()
    scale_reliability(data, scales, ci="bootstrap", n_boot=n_boot, seed=1, omega=False, measurement_model=False)
    return time.perf_counter() - t0


def _time_ours_full(data, scales, n_boot) -> float:
    from study.stats.reliability import scale_reliability

    t0 = time.perf_counter()
    scale_reliability(data, scales, ci="bootstrap", n_boot=n_boot, seed=1)
    return time.perf_counter() - t0


def _time_pingouin(data, scales, n_res) -> float:
    import pingouin as pg

    rng = np.random.default_rng(2)
    n = len(data)
    t0 = time.perf_counter()
    for items in scales.values():
        sub = data[items]
        for _ in range(n_res):
            pg.cronbach_alpha(data=sub.iloc[rng.integers(0, n, n)])
    return time.perf_counter() - t0


R_SCRIPT = r"""
suppressPackageStartupMessages(library(psych))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); k <- as.integer(args[2])
set.seed(1)
t1 <- 0; tk <- 0
for (s in 1:5) {
  x <- d[, grepl(paste0("^s", s, "_"), names(d))]
  t1 <- t1 + system.time(psych::alpha(x, n.iter = 1, warnings = FALSE))[["elapsed"]]
  tk <- tk + system.time(psych::alpha(x, n.iter = k, warnings = FALSE))[["elapsed"]]
}
cat(sprintf("%.6f %.6f\n", t1, tk))
"""


def _time_r(data, k) -> tuple[float, float] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "items.csv"
        data.to_csv(csv, index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT, encoding="utf-8")
        try:
            out = subprocess.run([rscript, str(script), str(csv), str(k)], capture_output=True, text=True,
                                 timeout=1800, check=True).stdout
        except (subprocess.SubprocessError, OSError):
            return None
    t1, tk = (float(v) for v in out.split()[-2:])
    return t1, tk


def run(quick: bool = False) -> pd.DataFrame:
    n = 10_000 if quick else 100_000
    n_boot = 2000
    n_pg = 5 if quick else 20
    k_r = 5 if quick else 10
    data, scales = _data(n)
    size = f"{n:,} x {N_SCALES * K_ITEMS} items in {N_SCALES} scales"
    rows = []

    ours = _time_ours(data, scales, n_boot)
    rows.append({"figure": "ours: scale_reliability BCa bootstrap", "value": ours, "unit": "s",
                 "note": f"{n_boot} resamples, {size}; α + BCa (ω, CFA off), measured"})
    if not quick:
        full = _time_ours_full(data, scales, n_boot)
        rows.append({"figure": "ours: scale_reliability full", "value": full, "unit": "s",
                     "note": "same, plus one-factor ω per scale and the 5-factor ML CFA (CR, AVE)"})

    t_pg = _time_pingouin(data, scales, n_pg)
    pg_est = t_pg * n_boot / n_pg
    rows.append({"figure": "pingouin.cronbach_alpha bootstrapped", "value": pg_est, "unit": "s",
                 "note": f"measured {t_pg:.2f} s for {n_pg} resamples x {N_SCALES} scales, extrapolated linearly to {n_boot}"})
    rows.append({"figure": "speed-up vs pingouin", "value": pg_est / ours, "unit": "x",
                 "note": "pingouin (extrapolated) / ours (measured), same run"})

    r = _time_r(data, k_r)
    if r is None:
        rows.append({"figure": "R psych::alpha(n.iter)", "value": np.nan, "unit": "s", "note": "Rscript or psych not available"})
    else:
        t1, tk = r
        per = max(tk - t1, 0.0) / (k_r - 1)
        r_est = t1 + (n_boot - 1) * per
        rows.append({"figure": "R psych::alpha(n.iter = 2000)", "value": r_est, "unit": "s",
                     "note": f"measured n.iter=1: {t1:.2f} s, n.iter={k_r}: {tk:.2f} s (5 scales); "
                             f"t(2000) = t(1) + 1999·(t({k_r}) − t(1))/{k_r - 1}, extrapolated linearly"})
        rows.append({"figure": "speed-up vs R psych", "value": r_est / ours, "unit": "x",
                     "note": "R (extrapolated) / ours (measured), same run"})
    return pd.DataFrame(rows, columns=["figure", "value", "unit", "note"])


if __name__ == "__main__":  # pragma: no cover
    import sys

    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(run(quick="--quick" in sys.argv).to_string(index=False))
