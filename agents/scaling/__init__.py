"""Predictive scaling: a trained load forecaster planning capacity one lead time ahead.

- :mod:`.history`: the load history as a working series, shared by training and policy;
- :mod:`.training`: the history → feature store → point-in-time training set → model
  (the only module here that imports DuckDB, and only to train);
- :mod:`.model`: the saved artefact and its checks;
- :mod:`.pipeline`: the streaming features in the closed loop;
- :mod:`.policy`: the ``predictive`` policy;
- :mod:`.recommendation`: the record it returns per pool and decision.
"""
