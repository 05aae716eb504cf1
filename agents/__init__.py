"""agents: the policies, models and environments that decide.

Importing the package registers the gymnasium environment ``opsbench/SpotFleet-v0``
(:mod:`agents.cost`), without importing torch or stable-baselines3.
"""

import agents.cost  # noqa: F401  (registers opsbench/SpotFleet-v0)
