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
"""
