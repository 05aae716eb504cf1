"""Predictive scaling: a trained load forecaster planning capacity one lead time ahead.

- :mod:`.training`: the history → feature store → point-in-time training set → model;
- :mod:`.model`: the saved artefact and its checks;
- :mod:`.pipeline`: the streaming features in the closed loop;
- :mod:`.policy`: the ``predictive`` policy;
- :mod:`.recommendation`: the record it returns per pool and decision.
"""
