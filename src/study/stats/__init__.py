"""Statistics layer: DataFrames in, results out -- no prose, no formatting.

Knows the data layer and the foundation, never the report.
"""
