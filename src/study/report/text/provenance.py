"""Appendix C, provenance."""

from __future__ import annotations

from study.report import present as P


def provenance_intro() -> P.Md:
    return P.md("The same inputs and parameters give the same numbers. These are the SHA-256 hashes of the raw and processed data, "
            "the parameters of this run, the versions of the software and the commit of the toolkit.")
