"""Revenue forecast: Holt-Winters with additive trend and seasonality, prediction intervals, and a backtest.

The model is the additive Holt-Winters method in its error-correction (state space, ETS(A,A,A)) form.
With m the season length and e_t the one-step error:

    e_t = y_t - (l_{t-1} + b_{t-1} + s_{t-m})
    l_t = l_{t-1} + b_{t-1} + alpha e_t
    b_t = b_{t-1} + beta e_t
    s_t = s_{t-m} + gamma e_t

The smoothing parameters minimise the sum of squared one-step errors, within 0 < alpha < 1,
0 < beta < alpha and 0 < gamma < 1 - alpha, by the Nelder-Mead simplex on unconstrained transforms
(pure Python).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

import attrs

from crmkit.errors import Problem, ValidationError
from crmkit.metrics._numeric import minimize_nelder_mead
from crmkit.metrics._periods import Result, Table

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal

__all__ = ["Backtest", "ForecastPoint", "HoltWinters", "backtest", "fit_holt_winters"]

# Starts in the unconstrained parameters: (alpha, beta / alpha, gamma / (1 - alpha)) of 0.5, 0.27 and
# 0.27 (logits 0, -1, -1), of 0.12, 0.05, 0.12, and of 0.27, 0.5, 0.5.
_STARTS = ((0.0, -1.0, -1.0), (-2.0, -3.0, -2.0), (-1.0, 0.0, 0.0))


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u)) if u > -700 else 0.0  # noqa: PLR2004 - exp overflow


def _parameters(u: Sequence[float]) -> tuple[float, float, float]:
    alpha = _sigmoid(u[0])
    return alpha, alpha * _sigmoid(u[1]), (1 - alpha) * _sigmoid(u[2])


def _initial(y: Sequence[float], m: int) -> tuple[float, float, list[float]]:
    """The states at the end of the first season, from the first two seasons' means.

    Trend = (mean of season 2 - mean of season 1) / m; the first season's mean is its level at its
    middle, (m - 1) / 2; each seasonal state is the value less the trend line there.
    """
    first = math.fsum(y[:m]) / m
    trend = (math.fsum(y[m : 2 * m]) / m - first) / m
    middle = (m - 1) / 2
    season = [value - (first + trend * (i - middle)) for i, value in enumerate(y[:m])]
    return first + trend * middle, trend, season


def _run(
    y: Sequence[float], m: int, alpha: float, beta: float, gamma: float
) -> tuple[float, float, float, list[float]]:
    """The sum of squared errors from period m on, and the final level, trend and seasonal states."""
    level, trend, season = _initial(y, m)
    season = list(season)
    sse = 0.0
    for t in range(m, len(y)):
        s = season[t % m]
        error = y[t] - (level + trend + s)
        sse += error * error
        level = level + trend + alpha * error
        trend = trend + beta * error
        season[t % m] = s + gamma * error
    return sse, level, trend, season


@attrs.frozen
class ForecastPoint(Result):
    """One forecast period.

    Attributes:
        step: How many periods after the last observation (1 for the next).
        value: The point forecast.
        lower: The lower end of the prediction interval.
        upper: The upper end.
    """

    step: int
    value: float
    lower: float
    upper: float


@attrs.frozen
class HoltWinters:
    """A fitted additive Holt-Winters model.

    Attributes:
        season_length: Periods in a season (12 for months in a year).
        alpha: Level smoothing.
        beta: Trend smoothing (error-correction form: 0 < beta < alpha).
        gamma: Seasonal smoothing (0 < gamma < 1 - alpha).
        level: The level after the last observation.
        trend: The trend after the last observation.
        seasonals: The seasonal states, indexed by period number modulo the season length.
        observations: How many values it was fitted on.
        sigma: The standard deviation of the one-step errors (sqrt(SSE / errors)).
    """

    season_length: int
    alpha: float
    beta: float
    gamma: float
    level: float
    trend: float
    seasonals: tuple[float, ...]
    observations: int
    sigma: float

    def forecast(self, horizon: int, *, level: float = 0.95) -> Table[ForecastPoint]:
        """Forecast the next ``horizon`` periods with prediction intervals.

        The point forecast h periods ahead is l + h b + s (the season's latest state). Its variance is
        sigma^2 [1 + (h - 1)(alpha^2 + alpha beta h + beta^2 h (2h - 1) / 6) + gamma k (gamma + 2 alpha +
        beta h (k + 1))] with k = floor((h - 1) / m) (Hyndman et al. 2008, class 1), and the interval is
        the forecast plus or minus z sigma_h, z the normal quantile of the level.

        Raises:
            ValidationError: For a horizon below 1 or a level outside (0, 1).
        """
        problems = []
        if horizon < 1:
            problems.append(Problem("horizon", f"must be at least 1, got {horizon}"))
        if not 0 < level < 1:
            problems.append(Problem("level", f"must be between 0 and 1, got {level}"))
        if problems:
            raise ValidationError(problems)
        m, a, b, g = self.season_length, self.alpha, self.beta, self.gamma
        z = NormalDist().inv_cdf(0.5 + level / 2)
        points = []
        for h in range(1, horizon + 1):
            value = self.level + h * self.trend + self.seasonals[(self.observations + h - 1) % m]
            k = (h - 1) // m
            variance = self.sigma**2 * (
                1
                + (h - 1) * (a * a + a * b * h + b * b * h * (2 * h - 1) / 6)
                + g * k * (g + 2 * a + b * h * (k + 1))
            )
            spread = z * math.sqrt(variance)
            points.append(ForecastPoint(h, value, value - spread, value + spread))
        return Table(tuple(points))


def _series(history: Sequence[float | Decimal], season_length: int) -> list[float]:
    problems = []
    if isinstance(season_length, bool) or not isinstance(season_length, int) or season_length < 2:  # noqa: PLR2004
        problems.append(
            Problem("season_length", f"must be a whole number of at least 2, got {season_length!r}")
        )
    elif len(history) < 2 * season_length + 1:
        problems.append(
            Problem("history", f"needs at least two seasons and one more value ({2 * season_length + 1})")
        )
    values = []
    for index, value in enumerate(history):
        number = float(value)
        if not math.isfinite(number):
            problems.append(Problem(f"history[{index}]", f"must be a finite number, got {value!r}"))
        values.append(number)
    if problems:
        raise ValidationError(problems)
    return values


def fit_holt_winters(history: Sequence[float | Decimal], *, season_length: int = 12) -> HoltWinters:
    """Fit additive Holt-Winters to a series (monthly revenue, say) by least squares.

    Args:
        history: The observations, oldest first, one per period (at least two seasons and one more).
        season_length: Periods per season (12 for monthly data with a yearly cycle, 4 for quarters).

    Raises:
        ValidationError: For a short history, a bad season length or a value that is not finite.
    """
    y = _series(history, season_length)
    m = season_length
    scale = max(1.0, math.fsum(v * v for v in y) / len(y))

    def objective(u: Sequence[float]) -> float:
        return _run(y, m, *_parameters(u))[0] / scale

    # The surface has flat corners (a smoothing parameter near 0 or 1): start from a few places.
    found = min(
        (minimize_nelder_mead(objective, start) for start in _STARTS),
        key=lambda minimum: minimum.value,
    )
    alpha, beta, gamma = _parameters(found.x)
    sse, level, trend, season = _run(y, m, alpha, beta, gamma)
    errors = len(y) - m
    return HoltWinters(m, alpha, beta, gamma, level, trend, tuple(season), len(y), math.sqrt(sse / errors))


@attrs.frozen
class Backtest(Result):
    """How a forecast made without the last periods compares with what happened.

    Attributes:
        horizon: The periods held out.
        actual: The values held out.
        forecast: Holt-Winters' forecasts of them.
        seasonal_naive: The seasonal-naive forecasts (the same period one season earlier).
        mape: Mean absolute percentage error of Holt-Winters, in percent; ``None`` if every actual is 0.
        naive_mape: The same for the seasonal-naive baseline.
    """

    horizon: int
    actual: tuple[float, ...]
    forecast: tuple[float, ...]
    seasonal_naive: tuple[float, ...]
    mape: float | None
    naive_mape: float | None


def _mape(actual: Sequence[float], predicted: Sequence[float]) -> float | None:
    terms = [abs(a - p) / abs(a) for a, p in zip(actual, predicted, strict=True) if a]
    return 100 * math.fsum(terms) / len(terms) if terms else None


def backtest(history: Sequence[float | Decimal], *, horizon: int, season_length: int = 12) -> Backtest:
    """Hold out the last ``horizon`` periods, fit on the rest, and report the errors.

    MAPE = 100 / n x sum of |actual - forecast| / |actual| over the held-out periods whose actual is not
    0. The seasonal-naive baseline forecasts each period by the value one season before it (the last
    observed season, repeated).

    Raises:
        ValidationError: For a horizon below 1, or too little history left to fit.
    """
    if horizon < 1:
        raise ValidationError.single("horizon", f"must be at least 1, got {horizon}")
    y = [float(value) for value in history]
    train, actual = y[:-horizon], y[-horizon:]
    model = fit_holt_winters(train, season_length=season_length)
    predicted = [point.value for point in model.forecast(horizon)]
    m = season_length
    naive = [train[len(train) - m + (h % m)] for h in range(horizon)]
    return Backtest(
        horizon, tuple(actual), tuple(predicted), tuple(naive), _mape(actual, predicted), _mape(actual, naive)
    )
