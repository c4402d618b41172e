"""Data layer: the study definition (study.yml), readers and atomic writes, validation and the processed store.

Knows only the package's foundation (errors, i18n, metrics).
"""
