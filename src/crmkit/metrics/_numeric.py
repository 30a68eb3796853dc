"""Pure-Python numerics for the metrics: special functions and a small quasi-Newton optimiser.

No numpy or scipy: the models have two to four parameters and the likelihoods are sums over customers
grouped by their distinct values, so plain floats and the :mod:`math` module are fast enough.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Minimum", "digamma", "hyp2f1", "minimize_bfgs", "minimize_nelder_mead"]

_ASYMPTOTIC_FROM = 10.0
_HYP2F1_MAX_TERMS = 200_000
_HYP2F1_TOLERANCE = 1e-15
_SMALLEST_STEP = 1e-12
_FLAT = 1e-6
_STALL = 1e-12
_STALL_STEPS = 10


def digamma(x: float) -> float:
    """The digamma function psi(x) = d/dx ln Gamma(x), for x > 0.

    Shifts x above 10 with psi(x) = psi(x + 1) - 1/x, then sums the asymptotic series
    ln x - 1/(2x) - sum B_2k / (2k x^2k); accurate to about 1e-15.
    """
    if x <= 0:
        msg = f"digamma is defined here for x > 0, got {x}"
        raise ValueError(msg)
    shift = 0.0
    while x < _ASYMPTOTIC_FROM:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (
        1 / 12
        - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (1 / 132 - inv2 * 691 / 32760))))
    )
    return shift + math.log(x) - 0.5 / x - series


def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """The Gaussian hypergeometric function 2F1(a, b; c; z) by its power series, for 0 <= z < 1.

    The series sum_n (a)_n (b)_n / ((c)_n n!) z^n converges for |z| < 1; each term is built from the
    previous one, and the sum stops once a term no longer changes it (relative 1e-15).
    """
    if not 0 <= z < 1:
        msg = f"the 2F1 series needs 0 <= z < 1, got {z}"
        raise ValueError(msg)
    term = 1.0
    total = 1.0
    for n in range(_HYP2F1_MAX_TERMS):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        total += term
        if abs(term) <= _HYP2F1_TOLERANCE * abs(total):
            return total
    msg = f"the 2F1 series did not converge in {_HYP2F1_MAX_TERMS} terms (z = {z})"
    raise ArithmeticError(msg)


@attrs.frozen
class Minimum:
    """Where :func:`minimize_bfgs` stopped.

    Attributes:
        x: The point found.
        value: The objective there.
        gradient_norm: The largest absolute component of the gradient there.
        iterations: Quasi-Newton steps taken.
        converged: Whether the gradient tolerance was met.
    """

    x: tuple[float, ...]
    value: float
    gradient_norm: float
    iterations: int
    converged: bool


def _dot(u: Sequence[float], v: Sequence[float]) -> float:
    return math.fsum(a * b for a, b in zip(u, v, strict=True))


def _line_search(
    objective: Callable[[Sequence[float]], tuple[float, list[float]]],
    x: list[float],
    value: float,
    direction: list[float],
    slope: float,
) -> tuple[list[float], float, list[float]] | None:
    """Backtrack from a full step until the value drops enough (Armijo); ``None`` if it never does."""
    step = 1.0
    while step >= _SMALLEST_STEP:
        candidate = [xi + step * di for xi, di in zip(x, direction, strict=True)]
        new_value, new_gradient = objective(candidate)
        if math.isfinite(new_value) and new_value <= value + 1e-4 * step * slope:
            return candidate, new_value, new_gradient
        step *= 0.5
    return None


def minimize_bfgs(
    objective: Callable[[Sequence[float]], tuple[float, list[float]]],
    start: Sequence[float],
    *,
    gradient_tolerance: float = 1e-8,
    max_iterations: int = 500,
) -> Minimum:
    """Minimise a smooth function with BFGS and a backtracking (Armijo) line search.

    Args:
        objective: Returns the value and the gradient at a point; ``inf`` or ``nan`` marks a point
            outside the domain, and the line search steps back from it.
        start: Where to begin.
        gradient_tolerance: Stop once every gradient component is at most this in absolute value.
        max_iterations: The most steps.

    Returns:
        The point found, with its value and whether it converged.
    """
    n = len(start)
    x = list(start)
    value, gradient = objective(x)
    if not math.isfinite(value):
        msg = "the objective is not finite at the starting point"
        raise ArithmeticError(msg)
    inverse = [[float(i == j) for j in range(n)] for i in range(n)]
    first_step = True
    stalled = 0
    for iteration in range(max_iterations):
        if max(abs(g) for g in gradient) <= gradient_tolerance:
            return Minimum(tuple(x), value, max(abs(g) for g in gradient), iteration, converged=True)
        direction = [-_dot(row, gradient) for row in inverse]
        slope = _dot(direction, gradient)
        if slope >= 0:  # not a descent direction: fall back to steepest descent
            inverse = [[float(i == j) for j in range(n)] for i in range(n)]
            direction = [-g for g in gradient]
            slope = -_dot(gradient, gradient)
        found = _line_search(objective, x, value, direction, slope)
        if found is None:
            # No decrease measurable in floating point: a minimum if the gradient is nearly flat.
            gradient_norm = max(abs(g) for g in gradient)
            flat = gradient_norm <= _FLAT * max(1.0, abs(value))
            return Minimum(tuple(x), value, gradient_norm, iteration, converged=flat)
        candidate, new_value, new_gradient = found
        s = [c - xi for c, xi in zip(candidate, x, strict=True)]
        y = [g1 - g0 for g1, g0 in zip(new_gradient, gradient, strict=True)]
        sy = _dot(s, y)
        # A run of steps that no longer lower the value (the optimum lies at infinity, say) ends the search.
        stalled = stalled + 1 if value - new_value <= _STALL * max(1.0, abs(value)) else 0
        x, value, gradient = candidate, new_value, new_gradient
        if stalled >= _STALL_STEPS:
            gradient_norm = max(abs(g) for g in gradient)
            flat = gradient_norm <= _FLAT * max(1.0, abs(value))
            return Minimum(tuple(x), value, gradient_norm, iteration + 1, converged=flat)
        if sy <= 1e-300:  # noqa: PLR2004 - curvature condition failed: keep the old approximation
            continue
        if first_step:  # scale the identity to the curvature seen (Nocedal & Wright 6.20)
            scale = sy / _dot(y, y)
            inverse = [[scale * float(i == j) for j in range(n)] for i in range(n)]
            first_step = False
        hy = [_dot(row, y) for row in inverse]
        yhy = _dot(y, hy)
        rho = 1.0 / sy
        factor = (1.0 + rho * yhy) * rho
        inverse = [
            [inverse[i][j] + factor * s[i] * s[j] - rho * (hy[i] * s[j] + s[i] * hy[j]) for j in range(n)]
            for i in range(n)
        ]
    gradient_norm = max(abs(g) for g in gradient)
    return Minimum(
        tuple(x), value, gradient_norm, max_iterations, converged=gradient_norm <= gradient_tolerance
    )


def minimize_nelder_mead(
    objective: Callable[[Sequence[float]], float],
    start: Sequence[float],
    *,
    step: float = 0.5,
    tolerance: float = 1e-10,
    max_iterations: int = 2000,
) -> Minimum:
    """Minimise a function without derivatives by the Nelder-Mead simplex (standard coefficients).

    Robust where the surface has flat regions or kinks; stops when the values at the simplex's corners
    differ by at most ``tolerance`` (relative to the best value, at least absolute).

    Args:
        objective: The function; ``inf`` marks a point outside the domain.
        start: One corner; the others are ``start`` moved by ``step`` along each axis.
        step: The initial size of the simplex.
        tolerance: The spread of values at which to stop.
        max_iterations: The most steps.
    """
    n = len(start)
    simplex = [list(start)]
    for i in range(n):
        corner = list(start)
        corner[i] += step
        simplex.append(corner)
    values = [objective(point) for point in simplex]
    for iteration in range(max_iterations):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if values[-1] - values[0] <= tolerance * max(1.0, abs(values[0])):
            return Minimum(tuple(simplex[0]), values[0], 0.0, iteration, converged=True)
        centroid = [math.fsum(point[j] for point in simplex[:-1]) / n for j in range(n)]
        worst = simplex[-1]
        reflected = [c + (c - w) for c, w in zip(centroid, worst, strict=True)]
        value = objective(reflected)
        if values[0] <= value < values[-2]:
            simplex[-1], values[-1] = reflected, value
        elif value < values[0]:
            expanded = [c + 2 * (c - w) for c, w in zip(centroid, worst, strict=True)]
            expanded_value = objective(expanded)
            if expanded_value < value:
                simplex[-1], values[-1] = expanded, expanded_value
            else:
                simplex[-1], values[-1] = reflected, value
        else:
            contracted = [c + 0.5 * (w - c) for c, w in zip(centroid, worst, strict=True)]
            contracted_value = objective(contracted)
            if contracted_value < values[-1]:
                simplex[-1], values[-1] = contracted, contracted_value
            else:  # shrink towards the best corner
                best = simplex[0]
                simplex = [best] + [
                    [b + 0.5 * (x - b) for b, x in zip(best, point, strict=True)] for point in simplex[1:]
                ]
                values = [values[0]] + [objective(point) for point in simplex[1:]]
    winner = min(range(n + 1), key=values.__getitem__)
    return Minimum(tuple(simplex[winner]), values[winner], 0.0, max_iterations, converged=False)
