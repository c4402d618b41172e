"""Report layer: what each chapter shows -- analyses shaped for the chapters, generated text, tables,
figures, and rendering to HTML and PDF.

Knows the statistics and data layers below it.
"""
