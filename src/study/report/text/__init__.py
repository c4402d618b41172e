"""The report's words: one text module per chapter (each reads the results of :mod:`study.report.analysis`
and returns Markdown, tables' captions and notes; none types a number).

``summary`` (Chapter 1), ``current_state`` (2), ``problems`` (3), ``measures`` (4), ``effects`` (5),
``conclusions`` (6), ``methods`` (Appendix A), ``data_quality`` (B), ``provenance`` (C); ``rules`` holds the
documented rules (:data:`study.report.text.rules.RULES`, printed in Appendix A) and ``words`` the shared helpers.
"""
