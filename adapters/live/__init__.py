"""``opsbench live``: the replay's policies and security analyser on a real fleet, through
the protocols of :mod:`adapters.protocols` only (shadow by default, guardrails on
``--apply``)."""
