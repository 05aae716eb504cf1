"""A gymnasium vector environment as a stable-baselines3 ``VecEnv``.

stable-baselines3 2.x steps its own :class:`~stable_baselines3.common.vec_env.VecEnv`
(a list of environments behind ``DummyVecEnv``/``SubprocVecEnv``). :class:`SB3VectorEnv`
hands it a gymnasium :class:`~gymnasium.vector.VectorEnv` whose sub-environments are
arrays (e.g. :class:`~agents.cost.vector_env.SpotFleetVectorEnv`) as is: one vector
step per ``step_wait``, the SB3 conventions on top (``dones`` = terminated or
truncated, ``infos[i]["terminal_observation"]`` and ``"TimeLimit.truncated"``, the
episode's ``totals`` when it ends). The vector environment must autoreset in
``SAME_STEP`` mode, which is SB3's own. Wrap it in
:class:`~stable_baselines3.common.vec_env.VecMonitor` for episode statistics.

Attributes are the vector environment's (``get_attr`` returns the same value for every
index); ``env_method`` calls the vector environment's method once per call.

Importing this module imports stable-baselines3 (and torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

__all__ = ["SB3VectorEnv"]


def _row(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-environment ``i``'s entries of a gymnasium vector info (``_key`` masks)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = info.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        out[key] = _row(value, i) if isinstance(value, dict) else value[i]
    return out


class SB3VectorEnv(VecEnv):
    """``venv`` (a gymnasium ``VectorEnv`` in ``SAME_STEP`` autoreset mode) for SB3."""

    def __init__(self, venv: VectorEnv[Any, Any, Any]) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"autoreset_mode: {mode} (stable-baselines3 needs AutoresetMode.SAME_STEP)"
            )
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self) -> VecEnvObs:
        """Reset every sub-environment (with the seed given to :meth:`seed`, once)."""
        seed = self._seeds[0]
        obs, info = self.venv.reset(seed=seed)
        self.reset_infos = [_row(info, i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        observations: VecEnvObs = obs
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos = [_row(info, i) for i in range(self.num_envs)]
        for i in np.flatnonzero(dones).tolist():
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i].update(_row(info["final_info"], i))
        for i, item in enumerate(infos):
            item["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
