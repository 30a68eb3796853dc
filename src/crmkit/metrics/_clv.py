"""Predictive customer lifetime value: BG/NBD for purchases, Gamma-Gamma for spend.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") says: while alive, a customer
buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") says the value of a customer's
purchases varies around their own mean, which varies across customers, independently of how often they
buy. Both are fitted by maximum likelihood with a BFGS optimiser on the logarithms of the parameters,
with analytic gradients; the likelihood sums run over distinct (frequency, recency, age) values, so
customers who look alike cost one term.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Protocol

import attrs

from crmkit.errors import Problem, ValidationError
from crmkit.metrics._numeric import digamma, hyp2f1, minimize_bfgs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from decimal import Decimal

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "RepeatHistory",
    "fit_bg_nbd",
    "fit_gamma_gamma",
    "predictive_clv",
]

# ln(1e6): a parameter fitted beyond 1e-6 to 1e6 ran off towards a boundary of the likelihood.
_RUNAWAY = math.log(1e6)
# Within this distance of 1, the closed forms dividing by (a - 1) are evaluated either side of it.
_NEAR_ONE = 1e-5


class RepeatHistory(Protocol):
    """What the models read of one customer: :class:`crmkit.segmentation.BtydSummary` has it.

    Times are in one unit (weeks in the published CDNOW results); see
    :func:`crmkit.segmentation.btyd_summary`.
    """

    @property
    def frequency(self) -> int:
        """Repeat purchases: purchase periods after the first one (``x``)."""
        ...

    @property
    def recency(self) -> float:
        """Time from the first purchase to the last one (``t_x``); 0 without repeats."""
        ...

    @property
    def T(self) -> float:  # noqa: N802 - the literature's and lifetimes' name for the customer's age
        """Time from the first purchase to the end of observation (the customer's age)."""
        ...

    @property
    def monetary(self) -> Decimal | float:
        """Mean value of the repeat purchases; 0 without repeats."""
        ...


def _checked(histories: Iterable[RepeatHistory]) -> list[tuple[int, float, float, float]]:
    """The histories as plain tuples, each checked."""
    result = []
    for index, h in enumerate(histories):
        x, t_x, age, m = h.frequency, float(h.recency), float(h.T), float(h.monetary)
        problem = None
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            problem = Problem(f"histories[{index}].frequency", f"must be a whole number >= 0, got {x!r}")
        elif not 0 <= t_x <= age or not math.isfinite(age):
            problem = Problem(f"histories[{index}].recency", f"must be from 0 to T = {age}, got {t_x}")
        elif x == 0 and t_x != 0:
            problem = Problem(f"histories[{index}].recency", "must be 0 without repeat purchases")
        elif not m >= 0 or not math.isfinite(m):
            problem = Problem(f"histories[{index}].monetary", f"must be a finite amount >= 0, got {m}")
        if problem is not None:
            raise ValidationError([problem])
        result.append((x, t_x, age, m))
    return result


@attrs.frozen
class BetaGeoModel:
    """A fitted BG/NBD model.

    Attributes:
        r: Shape of the Gamma distribution of purchase rates.
        alpha: Scale of that Gamma distribution (in time units).
        a: First shape of the Beta distribution of drop-out probabilities.
        b: Second shape of that Beta distribution.
        log_likelihood: The log-likelihood of the data at the fit (``nan`` when built by hand).
        customers: How many customers it was fitted on.
        converged: Whether the optimiser met its tolerance with every parameter between 1e-6 and 1e6
            (a parameter beyond means the data have no interior optimum: too few or atypical customers).
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    customers: int = 0
    converged: bool = True

    def expected_purchases(self, t: float) -> float:
        """Expected purchases of a new customer in their first ``t`` time units.

        E[X(t)] = (a + b - 1) / (a - 1)
        * [1 - (alpha / (alpha + t))^r * 2F1(r, b; a + b - 1; t / (alpha + t))]
        """
        if abs(self.a - 1) < _NEAR_ONE:  # (a - 1) divides: use the symmetric limit
            return _around_one(self, lambda model: model.expected_purchases(t))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - math.pow(alpha / (alpha + t), r) * hyp)

    def probability_alive(self, history: RepeatHistory) -> float:
        """The probability that the customer is still active.

        P(alive | x, t_x, T) = 1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x))
        """
        x = history.frequency
        if x == 0:
            return 1.0
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_odds = math.log(a / (b + x - 1)) + (r + x) * (
            math.log(alpha + float(history.T)) - math.log(alpha + float(history.recency))
        )
        return 1.0 / (1.0 + math.exp(log_odds)) if log_odds < 700 else 0.0  # noqa: PLR2004 - exp overflow

    def conditional_expected_purchases(self, history: RepeatHistory, t: float) -> float:
        """Expected purchases in the next ``t`` time units of a customer with this history.

        E[Y(t) | x, t_x, T] = (a + b + x - 1) / (a - 1)
        * [1 - ((alpha + T) / (alpha + T + t))^(r + x)
        * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))]
        / [1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)]
        """
        if abs(self.a - 1) < _NEAR_ONE:  # (a - 1) divides: use the symmetric limit
            return _around_one(self, lambda model: model.conditional_expected_purchases(history, t))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, age = history.frequency, float(history.T)
        horizon = alpha + age + t
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / horizon)
        numerator = (a + b + x - 1) / (a - 1) * (1 - math.pow((alpha + age) / horizon, r + x) * hyp)
        return numerator * self.probability_alive(history)


def _around_one(model: BetaGeoModel, value: Callable[[BetaGeoModel], float]) -> float:
    """A closed form with (a - 1) as divisor, at a = 1: the mean of its values just either side."""
    below = value(attrs.evolve(model, a=1 - 2 * _NEAR_ONE))
    above = value(attrs.evolve(model, a=1 + 2 * _NEAR_ONE))
    return (below + above) / 2


@attrs.frozen
class GammaGammaModel:
    """A fitted Gamma-Gamma spend model.

    Attributes:
        p: Shape of the Gamma distribution of one purchase's value around the customer's mean.
        q: Shape of the Gamma distribution of the customers' scale parameters.
        v: Scale of that distribution.
        log_likelihood: The log-likelihood at the fit (``nan`` when built by hand).
        customers: How many repeat customers it was fitted on.
        converged: Whether the optimiser met its tolerance with every parameter between 1e-6 and 1e6
            (a parameter beyond means the data have no interior optimum: too few or atypical customers).
    """

    p: float
    q: float
    v: float
    log_likelihood: float = math.nan
    customers: int = 0
    converged: bool = True

    def expected_average_value(self, history: RepeatHistory) -> float:
        """The customer's expected value per purchase, E(M | x, m) = p * (v + x * m) / (p * x + q - 1).

        A weighted mean of the population mean p v / (q - 1) and the customer's own mean m, the
        customer's weight growing with their repeat purchases x.
        """
        x = history.frequency
        return self.p * (self.v + x * float(history.monetary)) / (self.p * x + self.q - 1)


def _fit_problem(message: str) -> ValidationError:
    return ValidationError.single("histories", message)


def _interior(theta: Sequence[float]) -> bool:
    """Whether every parameter stayed within 1e-6 to 1e6: beyond, the likelihood has no interior maximum."""
    return all(abs(value) < _RUNAWAY for value in theta)


def _check_penalty(penalty: float) -> float:
    if not isinstance(penalty, int | float) or isinstance(penalty, bool) or not 0 <= penalty < math.inf:
        raise ValidationError.single("penalty", f"must be a finite number >= 0, got {penalty!r}")
    return float(penalty)


def _penalized(
    objective: Callable[[Sequence[float]], tuple[float, list[float]]], penalty: float
) -> Callable[[Sequence[float]], tuple[float, list[float]]]:
    """The objective in log-parameters plus penalty x the sum of the squared parameters."""
    if not penalty:
        return objective

    def penalized(theta: Sequence[float]) -> tuple[float, list[float]]:
        value, gradient = objective(theta)
        if not math.isfinite(value):
            return value, gradient
        squares = [math.exp(2 * t) for t in theta]  # d(p^2)/d(ln p) = 2 p^2
        return value + penalty * sum(squares), [
            g + 2 * penalty * sq for g, sq in zip(gradient, squares, strict=True)
        ]

    return penalized


def fit_bg_nbd(histories: Iterable[RepeatHistory], *, penalty: float = 0.0) -> BetaGeoModel:
    """Fit BG/NBD by maximum likelihood.

    The log-likelihood of one customer (x, t_x, T) is

    ln L = ln Gamma(r + x) - ln Gamma(r) + r ln alpha + ln B(a, b + x) - ln B(a, b)
    + ln[(alpha + T)^-(r + x) + [x > 0] * a / (b + x - 1) * (alpha + t_x)^-(r + x)]

    Args:
        histories: One per customer, in one time unit.
        penalty: An L2 penalty on the parameters, added to the mean negative log-likelihood as
            penalty x (r^2 + alpha^2 + a^2 + b^2): 0 (the default) is plain maximum likelihood; a small
            value (0.001 to 0.1) keeps a fit on little data from running off to infinity, as
            ``lifetimes``' ``penalizer_coef`` does (which applies to rescaled times, so values differ).

    Returns:
        The fitted model, with the log-likelihood at the optimum.

    Raises:
        ValidationError: If there are no customers, or no repeat purchases to learn from.
    """
    triples = Counter((x, t_x, age) for x, t_x, age, _ in _checked(histories))
    total = sum(triples.values())
    if not total:
        msg = "no customers to fit"
        raise _fit_problem(msg)
    if all(x == 0 for x, _, _ in triples):
        msg = "no customer made a repeat purchase; BG/NBD cannot be fitted"
        raise _fit_problem(msg)
    objective = _BgNbdLikelihood(triples, total)
    found = minimize_bfgs(_penalized(objective, _check_penalty(penalty)), (0.0, 0.0, 0.0, 0.0))
    r, alpha, a, b = (math.exp(v) for v in found.x)
    converged = found.converged and _interior(found.x)
    return BetaGeoModel(r, alpha, a, b, -objective(found.x)[0] * total, total, converged)


class _BgNbdLikelihood:
    """The BG/NBD negative mean log-likelihood and its gradient, in log-parameters."""

    def __init__(self, triples: Counter[tuple[int, float, float]], total: int) -> None:
        self.total = total
        counts: Counter[int] = Counter()
        for (x, _, _), n in triples.items():
            counts[x] += n
        self.frequency_counts = [(x, counts[x]) for x in sorted(counts)]
        ages = sorted({age for _, _, age in triples})
        recencies = sorted({t for x, t, _ in triples if x > 0})
        self.ages, self.recencies = ages, recencies
        age_index = {age: i for i, age in enumerate(ages)}
        recency_index = {t: i for i, t in enumerate(recencies)}
        # Customers without repeats depend on their age only.
        zeros: Counter[int] = Counter()
        repeats = []
        for (x, t, age), n in triples.items():
            if x == 0:
                zeros[age_index[age]] += n
            else:
                repeats.append((x, recency_index[t], age_index[age], n))
        self.zeros = sorted(zeros.items())
        self.repeats = repeats

    def __call__(self, theta: Sequence[float]) -> tuple[float, list[float]]:
        if max(theta) > 30 or min(theta) < -30:  # noqa: PLR2004 - far outside any plausible fit
            return math.inf, [0.0] * 4
        r, alpha, a, b = (math.exp(v) for v in theta)
        log, lgamma = math.log, math.lgamma
        ll = dr = dalpha = da = db = 0.0
        psi_r, psi_b, psi_ab = digamma(r), digamma(b), digamma(a + b)
        lgamma_r, lgamma_b, lgamma_ab = lgamma(r), lgamma(b), lgamma(a + b)
        log_alpha = log(alpha)
        for x, n in self.frequency_counts:
            ll += n * (
                lgamma(r + x)
                - lgamma_r
                + r * log_alpha
                + lgamma_ab
                + lgamma(b + x)
                - lgamma_b
                - lgamma(a + b + x)
            )
            psi_abx = digamma(a + b + x)
            dr += n * (digamma(r + x) - psi_r + log_alpha)
            dalpha += n * r / alpha
            da += n * (psi_ab - psi_abx)
            db += n * (psi_ab + digamma(b + x) - psi_b - psi_abx)
        log_ages = [log(alpha + age) for age in self.ages]
        inverse_ages = [1.0 / (alpha + age) for age in self.ages]
        log_recencies = [log(alpha + t) for t in self.recencies]
        inverse_recencies = [1.0 / (alpha + t) for t in self.recencies]
        for age_i, n in self.zeros:
            ll -= n * r * log_ages[age_i]
            dr -= n * log_ages[age_i]
            dalpha -= n * r * inverse_ages[age_i]
        exp, log1p = math.exp, math.log1p
        log_a, weight = log(a), 0.0
        # ln(a / (b + x - 1)) and 1 / (b + x - 1) per distinct frequency.
        log_ratio = {x: log_a - log(b + x - 1) for x, _ in self.frequency_counts if x}
        inverse_bx = {x: 1.0 / (b + x - 1) for x in log_ratio}
        for x, t_i, age_i, n in self.repeats:
            log_age, log_t = log_ages[age_i], log_recencies[t_i]
            rx = r + x
            # z = ln(second term / first term); ln(A + B) = ln A + ln(1 + e^z), w = B / (A + B).
            z = log_ratio[x] + rx * (log_age - log_t)
            if z > 0:
                e = exp(-z)
                softplus, w = z + log1p(e), 1.0 / (1.0 + e)
            else:
                e = exp(z)
                softplus, w = log1p(e), e / (1.0 + e)
            ll += n * (softplus - rx * log_age)
            dr -= n * (log_age + w * (log_t - log_age))
            dalpha -= n * rx * (inverse_ages[age_i] + w * (inverse_recencies[t_i] - inverse_ages[age_i]))
            nw = n * w
            weight += nw
            db -= nw * inverse_bx[x]
        da += weight / a
        scale = -1.0 / self.total
        gradient = [scale * dr * r, scale * dalpha * alpha, scale * da * a, scale * db * b]
        return scale * ll, gradient


def fit_gamma_gamma(histories: Iterable[RepeatHistory], *, penalty: float = 0.0) -> GammaGammaModel:
    """Fit Gamma-Gamma by maximum likelihood on the customers with repeat purchases.

    For a customer with x repeat purchases of mean value m, the log-likelihood is

    ln L = ln Gamma(p x + q) - ln Gamma(p x) - ln Gamma(q) + q ln v + (p x - 1) ln m + p x ln x
    - (p x + q) ln(v + m x)

    Customers without repeat purchases (x = 0) carry no information on spend and are left out.

    Args:
        histories: One per customer; ``monetary`` is the mean of the repeat purchases.
        penalty: An L2 penalty on the parameters, added to the mean negative log-likelihood as
            penalty x (p^2 + q^2 + v^2); 0 (the default) is plain maximum likelihood.

    Returns:
        The fitted model.

    Raises:
        ValidationError: If no customer has a repeat purchase with a positive value.
    """
    pairs = Counter((x, m) for x, _, _, m in _checked(histories) if x > 0 and m > 0)
    total = sum(pairs.values())
    if not total:
        msg = "no customer has a repeat purchase with a positive value"
        raise _fit_problem(msg)
    objective = _GammaGammaLikelihood(pairs, total)
    found = minimize_bfgs(_penalized(objective, _check_penalty(penalty)), (0.0, 0.0, 0.0))
    p, q, v = (math.exp(value) for value in found.x)
    converged = found.converged and _interior(found.x)
    return GammaGammaModel(p, q, v, -objective(found.x)[0] * total, total, converged)


class _GammaGammaLikelihood:
    """The Gamma-Gamma negative mean log-likelihood and its gradient, in log-parameters."""

    def __init__(self, pairs: Counter[tuple[int, float]], total: int) -> None:
        self.total = total
        counts: Counter[int] = Counter()
        sum_log_m: defaultdict[int, float] = defaultdict(float)
        for (x, m), n in pairs.items():
            counts[x] += n
            sum_log_m[x] += n * math.log(m)
        self.by_frequency = [(x, counts[x], sum_log_m[x], math.log(x)) for x in sorted(counts)]
        self.pairs = [(x, m, n) for (x, m), n in pairs.items()]

    def __call__(self, theta: Sequence[float]) -> tuple[float, list[float]]:
        if max(theta) > 30 or min(theta) < -30:  # noqa: PLR2004 - far outside any plausible fit
            return math.inf, [0.0] * 3
        p, q, v = (math.exp(value) for value in theta)
        lgamma, log = math.lgamma, math.log
        ll = dp = dq = dv = 0.0
        lgamma_q, psi_q, log_v = lgamma(q), digamma(q), log(v)
        for x, n, sum_log_m, log_x in self.by_frequency:
            px = p * x
            ll += n * (lgamma(px + q) - lgamma(px) - lgamma_q + q * log_v + px * log_x) + (px - 1) * sum_log_m
            psi_pxq = digamma(px + q)
            dp += n * x * (psi_pxq - digamma(px) + log_x) + x * sum_log_m
            dq += n * (psi_pxq - psi_q + log_v)
            dv += n * q / v
        for x, m, n in self.pairs:
            px = p * x
            base = v + m * x
            log_base = log(base)
            ll -= n * (px + q) * log_base
            dp -= n * x * log_base
            dq -= n * log_base
            dv -= n * (px + q) / base
        # d/dp of -(px + q) ln(v + m x) is -x ln(v + m x): m x does not depend on p.
        scale = -1.0 / self.total
        return scale * ll, [scale * dp * p, scale * dq * q, scale * dv * v]


def predictive_clv(
    purchases: BetaGeoModel,
    spend: GammaGammaModel,
    history: RepeatHistory,
    *,
    periods: int,
    period_length: float,
    discount_rate: float,
    margin: float = 1.0,
) -> float:
    """Discounted expected value of a customer's future purchases.

    CLV = sum over i = 1..periods of margin * E(M) * (E[Y(i L)] - E[Y((i - 1) L)]) / (1 + d)^i,
    with E[Y(t)] the BG/NBD conditional expected purchases, E(M) the Gamma-Gamma expected value per
    purchase, L the period length and d the discount rate per period.

    Args:
        purchases: The fitted BG/NBD model.
        spend: The fitted Gamma-Gamma model.
        history: The customer.
        periods: How many periods ahead (12 months, say).
        period_length: One period in the models' time unit (a month is 30.4375 / 7 = 4.348 weeks;
            ``lifetimes`` uses 4.345).
        discount_rate: The discount rate per period (0.01 is 1 % a month).
        margin: The share of revenue that is profit (1 counts revenue).

    Returns:
        The value in the currency of the monetary values.

    Raises:
        ValidationError: If a parameter is out of range.
    """
    problems = []
    if periods < 0:
        problems.append(Problem("periods", "must not be negative"))
    if period_length <= 0:
        problems.append(Problem("period_length", "must be positive"))
    if discount_rate <= -1:
        problems.append(Problem("discount_rate", "must be above -1"))
    if problems:
        raise ValidationError(problems)
    value = spend.expected_average_value(history) * margin
    total, before = 0.0, 0.0
    for i in range(1, periods + 1):
        cumulative = purchases.conditional_expected_purchases(history, i * period_length)
        total += value * (cumulative - before) / (1 + discount_rate) ** i
        before = cumulative
    return total
