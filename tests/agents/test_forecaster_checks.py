"""scikit-learn's estimator checks (``parametrize_with_checks``) on every registered forecaster.

The checks feed plain arrays without column names, on a couple of hundred rows. So the
models that read a column by its role (the recent level, the seasonal value) are given
that column by position, which reads arrays the way the column names read the frames of
``make_features`` (``test_forecasting.py`` holds the two forms equal), and the ensembles
are made small enough for rows that few and for a suite of seconds.

A check that cannot apply to a forecaster goes in ``EXPECTED_FAILED_CHECKS`` with its
reason; none is needed today. ``check_estimators_nan_inf`` does not run (``NaN`` feature
cells are allowed, tag ``allow_nan``): ``test_forecasting.py`` checks that infinities are
refused.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

from opsbench_testing import registered_forecasters


CHECK_PARAMS: dict[str, dict[str, object]] = {
    "gbm-quantile": {
        "level_column": 0,
        "unscaled_columns": (),
        "max_iter": 30,
        "learning_rate": 0.3,
        "min_samples_leaf": 5,
    },
    "seasonal-naive-1d": {"columns": (0,)},
    "seasonal-naive-1w": {"columns": (1, 0)},
    "seed-rf": {"n_estimators": 20},
}
"""Per name, the hyper-parameters set for the checks (a name not listed keeps its defaults)."""
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}
"""Per name, ``{check name: why it cannot apply}``."""

FORECASTERS_UNDER_CHECK = [
    (name, build().set_params(**CHECK_PARAMS.get(name, {})))
    for name, build in sorted(registered_forecasters().items())
]


def expected_failed_checks(estimator: BaseEstimator) -> dict[str, str]:
    name = next(name for name, e in FORECASTERS_UNDER_CHECK if e is estimator)
    return EXPECTED_FAILED_CHECKS.get(name, {})


# A forest of 20 trees on 30 rows leaves a few rows without out-of-bag trees; the model
# drops their residuals, scikit-learn warns.
@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores:UserWarning")
@parametrize_with_checks(
    [estimator for _, estimator in FORECASTERS_UNDER_CHECK],
    expected_failed_checks=expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator: BaseEstimator, check: Callable[..., None]) -> None:
    check(estimator)
