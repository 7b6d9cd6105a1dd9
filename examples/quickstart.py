"""Score three click models and a feature's drift with the xebench kernel.

Run it with ``python examples/quickstart.py``. The data are synthetic with a
fixed seed, so the output is the same on every machine:

- ``calibrated``: probabilities equal to the true click rates;
- ``overconfident``: the same ranking, pushed towards 0 and 1;
- ``prior``: the click rate for everyone (the no-skill baseline).
"""

from __future__ import annotations

import numpy as np

import xebench as xb


def make_clicks(n: int = 20_000, seed: int = 7) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and three models' P(click) for ``n`` synthetic impressions."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-2.0, 1.2, size=n)
    true_rate = 1.0 / (1.0 + np.exp(-logit))
    clicked = (rng.uniform(size=n) < true_rate).astype(int)
    overconfident = 1.0 / (1.0 + np.exp(-2.5 * logit))
    models = {
        "calibrated": true_rate,
        "overconfident": overconfident,
        "prior": np.full(n, clicked.mean()),
    }
    return clicked, models


def main() -> None:
    clicked, models = make_clicks()
    print(f"{len(clicked)} impressions, click rate {clicked.mean():.3f}")
    print(f"prior (no-skill) log loss: {xb.prior_log_loss(clicked):.4f} nats\n")

    header = f"{'model':<14}{'log loss':>9}{'bits':>8}{'ppl':>7}{'brier':>8}{'ECE':>8}{'skill':>8}"
    print(header)
    print("-" * len(header))
    for name, p_click in models.items():
        print(
            f"{name:<14}"
            f"{xb.log_loss(clicked, p_click):>9.4f}"
            f"{xb.log_loss(clicked, p_click, base=2):>8.4f}"
            f"{xb.perplexity(clicked, p_click):>7.3f}"
            f"{xb.brier_score(clicked, p_click):>8.4f}"
            f"{xb.calibration_error(clicked, p_click):>8.4f}"
            f"{round(xb.skill_score(clicked, p_click), 3) + 0.0:>8.3f}"  # no "-0.000"
        )

    curve = xb.reliability_curve(clicked, models["overconfident"], n_bins=5)
    print("\nreliability of 'overconfident' (5 bins):")
    print(f"{'bin':<12}{'rows':>7}{'predicted':>11}{'observed':>10}")
    for lo, hi, count, predicted, observed in zip(
        curve.bin_edges[:-1],
        curve.bin_edges[1:],
        curve.count,
        curve.mean_predicted,
        curve.observed_frequency,
        strict=True,
    ):
        print(f"{lo:.1f}-{hi:.1f}{count:>12.0f}{predicted:>11.3f}{observed:>10.3f}")

    reference = np.array([500, 300, 150, 50])  # a feature's histogram last week
    current = np.array([350, 300, 200, 150])  # ... and today
    print("\ndrift of a feature between two histograms:")
    # The source documents' direction: KL(P_baseline || Q_current).
    print(f"  KL(reference || current) = {xb.kl_divergence(reference, current):.4f} nats")
    print(f"  JS                       = {xb.js_divergence(current, reference):.4f} nats")
    print(f"  PSI                      = {xb.psi(reference, current):.4f}")


if __name__ == "__main__":
    main()
