"""Cost optimisation on spot capacity: a spot-fleet environment, heuristics, the hindsight
limit and a learned policy (``cost-rl``).

- :mod:`.plan`: the capacity plan every cost policy shares (how many pods) and the
  executor that turns a capacity *mix* into nodes per pool and AZ;
- :mod:`.view`: what a cost policy sees at a control tick, built from a simulator
  observation or from the fast fleet model, and the observation features;
- :mod:`.fleet`: the fast fleet model the environment steps;
- :mod:`.env`: the gymnasium environment ``opsbench/SpotFleet-v0``;
- :mod:`.heuristics`: ``on-demand``, ``spot-greedy``, ``uniform-progress``,
  ``price-capacity`` and ``hindsight`` as mix rules;
- :mod:`.policies`: all of them (and ``cost-rl``) as simulator policies;
- :mod:`.model`: the saved PPO model and its sha256 check; :mod:`.training`: PPO.

Importing this package (which ``import agents`` does) registers ``opsbench/SpotFleet-v0``
with gymnasium by its entry-point string, so neither the environment's module nor torch
is imported until ``gym.make`` builds one.
"""

import gymnasium as gym

ENV_ID = "opsbench/SpotFleet-v0"
ENTRY_POINT = "agents.cost.env:SpotFleetEnv"


def register() -> None:
    """Register ``opsbench/SpotFleet-v0`` with gymnasium (idempotent).

    No ``max_episode_steps``: the environment truncates its own episodes, after
    ``episode_minutes`` steps in train mode and at the end of the replay in replay mode
    (longer than any fixed limit that suits training), so a TimeLimit wrapper would cut
    replays short.
    """
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=ENTRY_POINT)


register()
