"""Cost optimisation on spot capacity: a spot-fleet environment, heuristics, the hindsight
limit and a learned policy (``cost-rl``).

- :mod:`.plan`: the capacity plan every cost policy shares (how many pods) and the
  executor that turns a capacity *mix* into nodes per pool and AZ;
- :mod:`.view`: what a cost policy sees at a control tick, built from a simulator
  observation or from the fast fleet model, and the observation features;
- :mod:`.fleet`: the fast fleet model the environment steps;
- :mod:`.env`: the gymnasium environment ``opsbench/SpotFleet-v0``;
- :mod:`.vector_env`: the same environment vectorised (``gym.make_vec``), on
  :mod:`.vector_plan`, :mod:`.vector_market` and the count-based :mod:`.vector_fleet`;
- :mod:`.heuristics`: ``on-demand``, ``spot-greedy``, ``uniform-progress``,
  ``price-capacity`` and ``hindsight`` as mix rules;
- :mod:`.policies`: all of them (and ``cost-rl``) as simulator policies;
- :mod:`.model`: the saved PPO model and its sha256 check; :mod:`.training`: PPO.

Importing this package (which ``import agents`` does) registers ``opsbench/SpotFleet-v0``
with gymnasium by its entry-point strings, so neither the environments' modules nor torch
are imported until ``gym.make`` (or ``gym.make_vec``) builds one.
"""

import gymnasium as gym

ENV_ID = "opsbench/SpotFleet-v0"
ENTRY_POINT = "agents.cost.env:SpotFleetEnv"
VECTOR_ENTRY_POINT = "agents.cost.vector_env:SpotFleetVectorEnv"


def register() -> None:
    """Register ``opsbench/SpotFleet-v0`` with gymnasium (idempotent).

    No ``max_episode_steps``: the environment truncates its own episodes, after
    ``episode_minutes`` steps in train mode and at the end of the replay in replay mode
    (longer than any fixed limit that suits training), so a TimeLimit wrapper would cut
    replays short. ``gym.make_vec(ENV_ID, num_envs=N)`` builds the vectorised
    environment (``vector_entry_point``: numpy arrays over the sub-environments).
    """
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT)


register()
