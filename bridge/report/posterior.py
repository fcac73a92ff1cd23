"""How sure the report can be: a posterior of each setup's score, P(best) and an 80 % interval.

Every part of the score (score.score_parts) is a rate estimated from counts the report already
has; each gets a conjugate posterior shrunk toward the *pooled* rate of the setups compared
(empirical Bayes: the prior's centre is what all of them did together; its strength, how alike
the setups are, has a posterior of its own from the data, STRENGTHS). The score is then drawn DRAWS times by the report's own formula
(score.WEIGHTS) applied to drawn parameters, and

  probabilityBest = the share of draws in which the setup has the highest score,
  scoreInterval   = the 10th and 90th percentiles of its drawn scores.

Per setup:
  userGrade     shares of (-1, 1, 2, 5) ~ Dirichlet(counts + strength x pooled shares);
                the part is (mean grade + 1) / 6 of the drawn shares
  agentGrade    w x (the same over its self-grades) + (1 - w) x userGrade, w its model's agreement
                weight (agreement.py): self-grades that disagree with the user's are replaced by what
                the user says; the self-grade draws move with the user-grade draws as far as the two
                agree (_correlated)
  completion    abandoned of ended sessions ~ Binomial(ended, q), q ~ Beta
  productivity  a session not abandoned makes 1 + extra commits, extra ~ Poisson(nu), nu ~ Gamma;
                commits per session = (1 - q)(1 + nu), the part c / (c + 1)
  reliability   bugs ~ Poisson(beta x commits), beta ~ Gamma; the part 1 - min(1, beta)
  toolSuccess   failed of tool calls ~ Binomial, failure rate ~ Beta; calls within a session are
                not independent, so at most CALLS_PER_SESSION per session count as evidence
  cleanCommits  fixed up of commits ~ Binomial, rate ~ Beta

``between`` (a Spread) and ``stack_factor`` (per setup): when the answer for a project comes from
other stacks (recommend's language and all-projects levels), each draw adds the setup's own
deviation on the new stack, normal with standard deviation tau x sqrt(1 + 1/k): k the stacks the
setup was used on (its pooled score is itself off by tau / sqrt(k)), tau the between-stack spread,
itself drawn from its posterior (stack_spread), so a spread few setups measure stays uncertain.

numpy is imported here, inside the functions: the bridge never loads it at startup.
"""

from __future__ import annotations

import hashlib
from math import lgamma as _lgamma
from typing import TYPE_CHECKING, Any, Sequence

import attrs

from .agreement import NO_PAIRS, Agreement
from .score import GRADE_VALUES, WEIGHTS

if TYPE_CHECKING:
    from .model import SetupRow

DRAWS = 2000
# A prior's strength (pseudo-observations at the pooled rate: how alike the setups are) is not
# fixed but learned: its posterior on this grid (the data's marginal likelihood), and each draw uses a strength drawn from it, so the doubt about how alike the
# setups are is part of the answer (a few setups measure it poorly).
STRENGTHS = tuple(0.25 * 1.4 ** i for i in range(24))  # 0.25 .. about 560
# The strength's prior, p(s) ds ~ s^(-5/2) ds (Gelman et al., Bayesian Data Analysis, 5.3: the
# hierarchical beta-binomial's prior on alpha + beta): on the log-spaced grid, weight s^(-3/2). Many
# alike setups can still prove a strong one; a few never force it.
STRENGTH_PRIOR_POWER = -1.5
CALLS_PER_SESSION = 10   # tool calls counted as evidence per session (they come in clusters)
INTERVAL = (10.0, 90.0)  # percentiles: an 80 % interval
WEAK_STRENGTH = 0.5      # the prior of the between-stack measurement: nearly the setups' own rates
DEFAULT_STACK_SD = 5.0   # the scale of tau's half-normal prior (score points between stacks)
SPREAD_MAX, SPREAD_STEP = 20.0, 0.25  # the grid tau's posterior is computed on


@attrs.frozen
class Belief:
    """What the posterior says of one setup."""

    probability_best: float
    interval: tuple[float, float]
    mean: float

    def to_wire(self) -> dict[str, Any]:
        return {"probabilityBest": self.probability_best, "scoreInterval": [self.interval[0], self.interval[1]],
                "scoreMean": self.mean}


@attrs.frozen
class Posterior:
    """The drawn scores of the setups compared (rows in the order given), and what they say."""

    keys: tuple[tuple[str, str, str], ...]
    beliefs: tuple[Belief, ...]
    scores: Any   # numpy array (draws, setups)
    seed: int

    def belief(self, row: SetupRow) -> Belief | None:
        try:
            return self.beliefs[self.keys.index((row.agent, row.model, row.stack))]
        except ValueError:
            return None

    def thompson(self) -> int:
        """Thompson sampling: the index of the best setup in one draw (picked by the data's seed, so
        the same database suggests the same next setup; every new session changes it)."""
        import numpy as np

        draw = int(np.random.default_rng([self.seed, 1]).integers(len(self.scores)))
        return int(np.argmax(self.scores[draw]))


@attrs.frozen
class Spread:
    """The posterior of tau, how far one agent/model's score on one stack strays from its score
    elsewhere (score points): weights over a grid of values."""

    grid: tuple[float, ...]
    weights: tuple[float, ...]
    measured: int   # agent/models used on two or more stacks

    @property
    def median(self) -> float:
        total = 0.0
        for value, weight in zip(self.grid, self.weights):
            total += weight
            if total >= 0.5:
                return value
        return self.grid[-1]


def _seed(rows: Sequence[SetupRow], weights: Sequence[float], spreads: Sequence[float]) -> int:
    digest = hashlib.sha256()
    for row, weight, spread in zip(rows, weights, spreads):
        digest.update(repr((row.agent, row.model, row.stack, *_evidence(row), round(weight, 9),
                            round(spread, 9))).encode())
    return int.from_bytes(digest.digest()[:8], "little")


def _evidence(row: SetupRow) -> tuple[float, ...]:
    return (row.sessions, row.commits, row.bugs, row.ended_sessions, row.abandoned_sessions,
            float(row.tool_calls), float(row.failed_tool_calls), row.fixed_up,
            *(row.user_grade_counts.get(v, 0) for v in GRADE_VALUES),
            *(row.agent_grade_counts.get(v, 0) for v in GRADE_VALUES))


def posterior(rows: Sequence[SetupRow], *, agent_weights: Sequence[float] | None = None,
              between: Spread | None = None, stack_factor: Sequence[float] | None = None,
              draws: int = DRAWS, fixed_strength: float | None = None) -> Posterior:
    """The posterior of every row's score, shrunk toward the pooled rates of these rows.

    ``fixed_strength``: every prior that strong instead of estimated (a weak one: nearly the
    setups' own rates, for measuring how they differ)."""
    import numpy as np

    weights = list(agent_weights) if agent_weights is not None else [1.0] * len(rows)
    spreads = (list(stack_factor) if stack_factor is not None else [1.0] * len(rows)) if between else [0.0] * len(rows)
    seed = _seed(rows, weights, [factor * (between.median if between else 0.0) for factor in spreads])
    keys = tuple((row.agent, row.model, row.stack) for row in rows)
    if not rows:
        return Posterior(keys, (), np.zeros((draws, 0)), seed)
    rng = np.random.default_rng(seed)
    n, size = len(rows), (draws, len(rows))
    lgamma = np.frompyfunc(_lgamma, 1, 1)
    values = np.array(GRADE_VALUES, dtype=float)

    def column(getter: Any) -> Any:
        return np.array([float(getter(row)) for row in rows])

    def strengths(log_likelihood: Any, least: float = 0.0) -> Any:
        """One prior strength per draw, from the strength's posterior on STRENGTHS (prior
        STRENGTH_PRIOR_POWER): ``log_likelihood(s)`` is the data's marginal log-likelihood under s.
        ``least``: the smallest strength allowed (a rate's prior is never U-shaped)."""
        if fixed_strength is not None:
            return np.full((draws, 1), fixed_strength)
        grid = np.array([value for value in STRENGTHS if value >= least] or [max(least, STRENGTHS[-1])])
        logs = np.array([log_likelihood(value) for value in grid]) + STRENGTH_PRIOR_POWER * np.log(grid)
        chances = np.exp(logs - logs.max())
        return rng.choice(grid, size=(draws, 1), p=chances / chances.sum())

    def grade_part(counts: Any) -> Any:
        pooled = (counts.sum(axis=0) + 1.0) / (counts.sum() + len(GRADE_VALUES))  # +1: no share is ever 0
        n_i = counts.sum(axis=1)

        def likelihood(strength: float) -> float:  # Dirichlet-multinomial
            prior = strength * pooled
            return float((lgamma(strength) - lgamma(strength + n_i)).sum()
                         + (lgamma(counts + prior) - lgamma(prior)).sum())

        alpha = counts[None, :, :] + strengths(likelihood)[:, :, None] * pooled
        shares = rng.gamma(alpha)
        mean = (shares * values).sum(axis=2) / shares.sum(axis=2)
        return (mean + 1.0) / 6.0

    def rate(hits: Any, trials: Any) -> Any:
        """Beta posterior of hits / trials, centred on the pooled rate."""
        pooled = (hits.sum() + 0.5) / (trials.sum() + 1.0)
        misses = trials - hits

        def likelihood(strength: float) -> float:  # beta-binomial
            a, b = strength * pooled, strength * (1.0 - pooled)
            return float((lgamma(hits + a) + lgamma(misses + b) - lgamma(trials + strength)).sum()
                         + len(hits) * (lgamma(strength) - lgamma(a) - lgamma(b)))

        # Unimodal: the prior never says a setup's rate is 0 or 1 (s x pooled >= 1 either way).
        drawn = strengths(likelihood, 1.0 / min(pooled, 1.0 - pooled))
        return rng.beta(hits + drawn * pooled, misses + drawn * (1.0 - pooled))

    def gamma_rate(events: Any, exposure: Any) -> Any:
        """Gamma posterior of events per unit of exposure, centred on the pooled rate; a strength
        s is s units of exposure at the pooled rate."""
        pooled = (events.sum() + 0.5) / (exposure.sum() + 1.0)

        def likelihood(strength: float) -> float:  # gamma-Poisson (negative binomial)
            shape = strength * pooled
            return float((lgamma(events + shape) - (events + shape) * np.log(exposure + strength)).sum()
                         + len(events) * (shape * np.log(strength) - lgamma(shape)))

        drawn = strengths(likelihood, 1.0 / pooled)  # a prior shape of at least 1: never piled up at 0
        return rng.gamma(events + drawn * pooled, 1.0 / (exposure + drawn))

    user = np.array([[row.user_grade_counts.get(v, 0) for v in GRADE_VALUES] for row in rows], dtype=float)
    agent = np.array([[row.agent_grade_counts.get(v, 0) for v in GRADE_VALUES] for row in rows], dtype=float)
    sessions = column(lambda r: r.sessions)
    commits = column(lambda r: r.commits)
    ended, abandoned = column(lambda r: r.ended_sessions), column(lambda r: r.abandoned_sessions)
    abandoned = np.minimum(abandoned, ended)
    kept = np.maximum(sessions - abandoned, 0.0)
    extra = np.maximum(commits - kept, 0.0)
    calls = column(lambda r: r.tool_calls)
    failed = np.minimum(column(lambda r: r.failed_tool_calls), calls)
    cap = np.maximum(sessions, 1.0) * CALLS_PER_SESSION
    scale = np.where(calls > cap, cap / np.maximum(calls, 1e-12), 1.0)
    calls, failed = calls * scale, failed * scale
    fixed = np.minimum(column(lambda r: r.fixed_up), commits)

    q = rate(abandoned, ended)
    nu = gamma_rate(extra, kept)
    per_session = (1.0 - q) * (1.0 + nu)
    beta = gamma_rate(column(lambda r: r.bugs), commits)
    user_part = grade_part(user)
    trust = np.array(weights, dtype=float)
    # A self-grade stands for the grade the user would give: as far as a model's self-grades do
    # not agree with its users', the user's grades answer for them.
    agent_part = trust * _correlated(np, grade_part(agent), user_part, trust) + (1 - trust) * user_part
    parts = {
        "userGrade": user_part,
        "agentGrade": agent_part,
        "productivity": per_session / (per_session + 1.0),
        "reliability": 1.0 - np.minimum(1.0, beta),
        "completion": 1.0 - q,
        "toolSuccess": 1.0 - rate(failed, calls),
        "cleanCommits": 1.0 - rate(fixed, commits),
    }
    scores = 100.0 * sum(WEIGHTS[name] * value for name, value in parts.items())
    if between is not None:
        weights_of = np.array(between.weights)
        tau = rng.choice(np.array(between.grid), size=draws, p=weights_of / weights_of.sum())
        scores = scores + rng.normal(0.0, 1.0, size=size) * tau[:, None] * np.array(spreads, dtype=float)
    best = np.bincount(np.argmax(scores, axis=1), minlength=n) / draws
    low, high = np.percentile(scores, INTERVAL, axis=0)
    means = scores.mean(axis=0)
    beliefs = tuple(Belief(float(best[i]), (float(low[i]), float(high[i])), float(means[i])) for i in range(n))
    return Posterior(keys, beliefs, scores, seed)


def _correlated(np: Any, agent: Any, user: Any, weights: Any) -> Any:
    """The agent-grade draws, correlated with the user-grade draws by the model's agreement weight.

    Self-grades that agree with the user's were given to the same commits: what makes one sample
    look good makes the other look good too, so their errors move together (drawn independently,
    the score's spread would be understated). Each setup's agent draws keep their mean and
    spread; their deviations take a share ``weight`` of the user draws' standardised deviations."""
    rho = np.clip(weights, 0.0, 1.0)
    user_dev = (user - user.mean(axis=0)) / np.maximum(user.std(axis=0), 1e-12)
    agent_mean, agent_sd = agent.mean(axis=0), agent.std(axis=0)
    agent_dev = (agent - agent_mean) / np.maximum(agent_sd, 1e-12)
    mixed = rho * user_dev + np.sqrt(1.0 - rho ** 2) * agent_dev
    return np.clip(agent_mean + agent_sd * mixed, 0.0, 1.0)


def stack_spread(rows: Sequence[SetupRow]) -> Spread:
    """The posterior of tau: how much one agent/model's score varies between the stacks it was
    used on, beyond what its sample sizes explain.

    ``rows`` are per stack (agent, model, stack). Each agent/model used on k >= 2 stacks gives the
    sum S of its per-stack scores' squared deviations from their mean, S ~ (tau^2 + v) chi2(k - 1),
    v its scores' mean sampling variance. With a half-normal prior on tau (scale DEFAULT_STACK_SD)
    that gives tau's posterior on a grid; nothing measured: the prior itself."""
    import numpy as np

    by_setup: dict[tuple[str, str], list[SetupRow]] = {}
    for row in rows:
        by_setup.setdefault((row.agent, row.model), []).append(row)
    several = [group for group in by_setup.values() if len(group) >= 2]
    grid = np.arange(0.0, SPREAD_MAX + 1e-9, SPREAD_STEP)
    log_weights = -0.5 * (grid / DEFAULT_STACK_SD) ** 2
    if several:
        # Nearly unshrunk estimates (a weak prior): shrinking each toward the others would hide the
        # very differences measured here. Their posterior variance stands for their sampling noise.
        measured = [row for group in several for row in group]
        post = posterior(measured, draws=1000, fixed_strength=WEAK_STRENGTH)
        index = {key: i for i, key in enumerate(post.keys)}
        for group in several:
            columns = [index[row.agent, row.model, row.stack] for row in group]
            means = post.scores[:, columns].mean(axis=0)
            noise = float(post.scores[:, columns].var(axis=0).mean())
            squares = float(((means - means.mean()) ** 2).sum())
            total = grid ** 2 + noise
            log_weights += -0.5 * (len(group) - 1) * np.log(total) - squares / (2 * total)
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    return Spread(tuple(float(v) for v in grid), tuple(float(w) for w in weights), len(several))


def is_contender(row: SetupRow) -> bool:
    """A setup P(best) is stated for: known agent and model, and at least one session."""
    from ..tracking.setups import UNKNOWN_AGENT, UNKNOWN_MODEL

    return row.agent != UNKNOWN_AGENT and row.model != UNKNOWN_MODEL and row.sessions > 0


def judge(rows: Sequence[SetupRow], agreements: dict[str, Agreement], *, between: Spread | None = None,
          stack_factor: Sequence[float] | None = None) -> Posterior:
    """The posterior of ``rows`` (contenders compared with each other), written onto the rows."""
    for row in rows:
        found = agreements.get(row.model, NO_PAIRS)
        row.self_grade_weight, row.self_grade_pairs = found.weight, found.pairs
    post = posterior(rows, agent_weights=[row.self_grade_weight for row in rows], between=between,
                     stack_factor=stack_factor)
    for row, belief in zip(rows, post.beliefs):
        row.probability_best, row.score_interval, row.score_mean = (belief.probability_best, belief.interval,
                                                                    belief.mean)
    return post
