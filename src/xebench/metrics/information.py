"""Information theory over distributions: entropy, KL, Jensen-Shannon, PSI.

Inputs are counts or probabilities per bin (normalized here), one
distribution per 1-D array or per row of a 2-D array; the drift histograms
call these on their bins.

    >>> round(js_divergence([0.5, 0.5], [0.9, 0.1]), 4)
    0.1017
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_distribution, check_smoothing, log_of_base
from ..errors import InvalidInputError
from .blocks import entropy_nats, float_or_array

__all__ = ["entropy", "js_divergence", "kl_divergence", "psi"]


def _smooth(dist: NDArray[np.float64], smoothing: float) -> NDArray[np.float64]:
    """Additive (Laplace) smoothing of normalized distributions."""
    if smoothing == 0.0:
        return dist
    smoothed = dist + smoothing
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


def _matching_distributions(
    p: ArrayLike, q: ArrayLike, p_name: str, q_name: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    dist_p, dist_q = check_distribution(p, p_name), check_distribution(q, q_name)
    if dist_p.shape != dist_q.shape:
        raise InvalidInputError(
            q_name, f"must have the same shape as {p_name} {dist_p.shape}", value=dist_q.shape
        )
    return dist_p, dist_q


def _require_support(
    p: NDArray[np.float64], q: NDArray[np.float64], p_name: str, q_name: str, metric: str
) -> None:
    """Unsmoothed divergences are infinite where q is 0 but p is not: refuse them."""
    missing = (q == 0.0) & (p > 0.0)
    if missing.any():
        flat = np.argwhere(missing)[0]
        where = f"bin {int(flat[-1])}" if flat.shape[0] == 2 else None
        raise InvalidInputError(
            q_name,
            f"is 0 where {p_name} is not, so {metric} is infinite; use smoothing > 0",
            **({"index": int(flat[0])} if flat.shape[0] == 2 else {"row": int(flat[0])}),
            value=0.0,
            where=where,
            row_name="row" if flat.shape[0] == 2 else "bin",
        )


def entropy(p: ArrayLike, *, base: str | int = "e") -> float | NDArray[np.float64]:
    """Shannon entropy ``-sum p log p`` of a distribution (counts are normalized).

    A 1-D array is one distribution (returns a float); a 2-D array is one
    distribution per row (returns an array). Agrees with
    ``scipy.stats.entropy``.

    Example:
        >>> entropy([0.5, 0.5], base=2)
        1.0
        >>> entropy([[1, 1, 1, 1], [1, 0, 0, 0]], base=2)
        array([2., 0.])
    """
    divisor = log_of_base(base)
    return float_or_array(entropy_nats(check_distribution(p, "p")) / divisor)


def kl_divergence(
    p: ArrayLike, q: ArrayLike, *, smoothing: float = 1e-6, base: str | int = "e"
) -> float | NDArray[np.float64]:
    """Kullback-Leibler divergence ``KL(p || q) = sum p log(p / q)``.

    ``p`` and ``q`` are counts or probabilities over the same bins (normalized
    here). ``smoothing`` is added to every bin of both normalized
    distributions, which are then renormalized, so empty bins do not make the
    divergence infinite; ``smoothing=0`` is allowed when ``q`` is non-zero
    wherever ``p`` is. Not symmetric; 0 iff p == q. 2-D inputs give one value
    per row.

    Example:
        >>> round(kl_divergence([0.5, 0.5], [0.9, 0.1], smoothing=0), 4)
        0.5108
        >>> kl_divergence([10, 30], [1, 3])
        0.0
    """
    divisor = log_of_base(base)
    smoothing = check_smoothing(smoothing)
    dist_p, dist_q = _matching_distributions(p, q, "p", "q")
    if smoothing == 0.0:
        _require_support(dist_p, dist_q, "p", "q", "KL")
    dist_p, dist_q = _smooth(dist_p, smoothing), _smooth(dist_q, smoothing)
    from scipy.special import rel_entr  # here: `import xebench` stays fast

    values = np.maximum(np.sum(rel_entr(dist_p, dist_q), axis=-1), 0.0)
    return float_or_array(values / divisor)


def js_divergence(
    p: ArrayLike, q: ArrayLike, *, base: str | int = "e"
) -> float | NDArray[np.float64]:
    """Jensen-Shannon divergence: ``(KL(p || m) + KL(q || m)) / 2``, ``m = (p + q) / 2``.

    Symmetric, finite without smoothing, between 0 and ln 2 (1 bit). Equals
    the square of ``scipy.spatial.distance.jensenshannon``. ``p`` and ``q``
    are counts or probabilities; 2-D inputs give one value per row.

    Example:
        >>> js_divergence([1, 0], [0, 1], base=2)
        1.0
        >>> round(js_divergence([0.5, 0.5], [0.9, 0.1]), 4)
        0.1017
    """
    divisor = log_of_base(base)
    dist_p, dist_q = _matching_distributions(p, q, "p", "q")
    mixture = (dist_p + dist_q) / 2.0
    from scipy.special import rel_entr  # here: `import xebench` stays fast

    values = (
        np.sum(rel_entr(dist_p, mixture), axis=-1) + np.sum(rel_entr(dist_q, mixture), axis=-1)
    ) / 2.0
    return float_or_array(np.maximum(values, 0.0) / divisor)


def psi(
    expected: ArrayLike, actual: ArrayLike, *, smoothing: float = 1e-4
) -> float | NDArray[np.float64]:
    """Population stability index: ``sum (a - e) ln(a / e)`` over bins.

    ``expected`` (the reference) and ``actual`` are counts or proportions per
    bin, normalized here; ``smoothing`` is added to every proportion (then
    renormalized) so empty bins stay finite; ``smoothing=0`` is allowed when
    neither has a zero bin the other fills. PSI is the symmetrised KL
    divergence in nats; common reading: < 0.1 stable, 0.1-0.25 moderate
    shift, > 0.25 major shift.

    Example:
        >>> round(psi([0.5, 0.5], [0.9, 0.1], smoothing=0), 4)
        0.8789
        >>> psi([10, 30, 60], [1, 3, 6])
        0.0
    """
    smoothing = check_smoothing(smoothing)
    dist_e, dist_a = _matching_distributions(expected, actual, "expected", "actual")
    if smoothing == 0.0:
        _require_support(dist_a, dist_e, "actual", "expected", "PSI")
        _require_support(dist_e, dist_a, "expected", "actual", "PSI")
    dist_e, dist_a = _smooth(dist_e, smoothing), _smooth(dist_a, smoothing)
    from scipy.special import rel_entr  # here: `import xebench` stays fast

    values = np.sum(rel_entr(dist_a, dist_e) + rel_entr(dist_e, dist_a), axis=-1)
    return float_or_array(np.maximum(values, 0.0))
