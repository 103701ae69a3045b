"""Does partial training rank models like full training? Kendall's tau and Spearman's rho, with a bootstrap.

:func:`rank_agreement` compares the partial and the full (or higher-budget) metric of the same models
(``scipy.stats.kendalltau`` / ``spearmanr``) and bootstraps a 90 % confidence interval of both (models
drawn with replacement, ``n_boot`` times, resamples with a constant side skipped). With fewer than
``MIN_MODELS`` (5) models it does not judge: :attr:`RankAgreement.judged` is False and the figures are None.
:meth:`RankAgreement.warning` is the message to log when tau is below a threshold (``search.min_rank_tau``),
naming the budget that would help.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MIN_MODELS", "RankAgreement", "rank_agreement"]

log = logging.getLogger(__name__)

MIN_MODELS = 5


@dataclass(frozen=True)
class RankAgreement:
    """Rank correlation of a partial and a fuller metric over ``n`` models."""

    n: int
    partial: str
    full: str
    kendall_tau: float | None = None
    kendall_ci: tuple[float, float] | None = None
    spearman_rho: float | None = None
    spearman_ci: tuple[float, float] | None = None

    @property
    def judged(self) -> bool:
        return self.kendall_tau is not None

    def summary(self) -> str:
        if not self.judged:
            return (
                f"{self.partial} vs {self.full}: {self.n} model(s), cannot be judged "
                f"(at least {MIN_MODELS} are needed)"
            )
        assert self.kendall_ci is not None and self.spearman_ci is not None
        return (
            f"{self.partial} vs {self.full} over {self.n} models: Kendall tau {self.kendall_tau:.2f} "
            f"[{self.kendall_ci[0]:.2f}, {self.kendall_ci[1]:.2f}], Spearman rho {self.spearman_rho:.2f} "
            f"[{self.spearman_ci[0]:.2f}, {self.spearman_ci[1]:.2f}] (90 % bootstrap)"
        )

    def warning(
        self, threshold: float, *, partial_epochs: float | None = None, helps: str | None = None
    ) -> str | None:
        """The warning to give when tau is below ``threshold`` (None otherwise, and when not judged).

        ``helps`` names the budget that would help; by default twice ``partial_epochs``."""
        if not self.judged or self.kendall_tau is None or self.kendall_tau >= threshold:
            return None
        if helps is None:
            helps = (
                f"{2 * partial_epochs:g} epochs of partial training" if partial_epochs else "a larger budget"
            )
        return (
            f"partial training does not rank models like full training: {self.summary()}, below "
            f"{threshold:g} (search.min_rank_tau); try {helps}"
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["judged"] = self.judged
        out["kendall_ci"] = list(self.kendall_ci) if self.kendall_ci else None
        out["spearman_ci"] = list(self.spearman_ci) if self.spearman_ci else None
        return out


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def rank_agreement(
    partial: Mapping[str, Any],
    full: Mapping[str, Any],
    *,
    partial_name: str = "partial",
    full_name: str = "full",
    n_boot: int = 1000,
    seed: int = 0,
) -> RankAgreement:
    """Kendall's tau and Spearman's rho between ``partial`` and ``full`` (model -> metric) over the models
    both hold a finite value for."""
    from scipy.stats import kendalltau, spearmanr

    keys = sorted(
        k for k in partial if k in full and _finite(partial[k]) is not None and _finite(full[k]) is not None
    )
    n = len(keys)
    if n < MIN_MODELS:
        return RankAgreement(n, partial_name, full_name)
    x = [float(partial[k]) for k in keys]
    y = [float(full[k]) for k in keys]

    def both(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
        if len(set(xs)) < 2 or len(set(ys)) < 2:
            return None
        return float(kendalltau(xs, ys).statistic), float(spearmanr(xs, ys).statistic)

    point = both(x, y)
    if point is None:
        return RankAgreement(n, partial_name, full_name)
    rng = random.Random(seed)
    taus: list[float] = []
    rhos: list[float] = []
    for _ in range(n_boot):
        idx = [rng.randrange(n) for _ in range(n)]
        got = both([x[i] for i in idx], [y[i] for i in idx])
        if got is not None and not any(math.isnan(v) for v in got):
            taus.append(got[0])
            rhos.append(got[1])

    def interval(values: list[float]) -> tuple[float, float]:
        values = sorted(values)
        return values[int(0.05 * (len(values) - 1))], values[int(math.ceil(0.95 * (len(values) - 1)))]

    return RankAgreement(
        n,
        partial_name,
        full_name,
        kendall_tau=point[0],
        kendall_ci=interval(taus) if taus else (point[0], point[0]),
        spearman_rho=point[1],
        spearman_ci=interval(rhos) if rhos else (point[1], point[1]),
    )
