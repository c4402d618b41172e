"""Service-quality research toolkit for retail banking.

Modules: ``config`` (paths, study.yml), ``io`` (readers, atomic writes), ``validate`` (schemas,
row rules, quarantine, manifest), ``sample`` (the seeded sample study), ``reliability``,
``scores``, ``drivers``, ``effects``, ``process``, ``benchmark``, ``figures``, ``report``,
``cli`` (``python -m study``).
"""

__version__ = "0.1.0"
