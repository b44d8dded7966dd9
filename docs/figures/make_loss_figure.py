"""Draw `hl_gauss_vs_two_hot.png`: HL-Gauss and Two-Hot target histograms side by side.

Run from the repository root: `python3 docs/figures/make_loss_figure.py`.
"""

from pathlib import Path

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepcrl.losses import HLGauss, TwoHot  # noqa: E402

V_MIN, V_MAX, NUM_BINS = 0.0, 10.0, 11
TARGETS = (3.3, 0.2, 12.0)  # interior, near the lower edge, beyond the upper edge
RATIOS = (0.25, 0.75, 2.0)
OUT = Path(__file__).parent / "hl_gauss_vs_two_hot.png"


def main() -> None:
    two_hot = TwoHot(V_MIN, V_MAX, NUM_BINS)
    fig, axes = plt.subplots(len(TARGETS), len(RATIOS), figsize=(11, 7.5), sharex=True, sharey=True)
    for row, target in enumerate(TARGETS):
        y = jnp.asarray([target])
        th_probs = two_hot.target_probs(y)[0]
        th_mean = float(th_probs @ two_hot.atoms)
        for col, ratio in enumerate(RATIOS):
            hl = HLGauss(V_MIN, V_MAX, NUM_BINS, sigma_ratio=ratio)
            probs = hl.target_probs(y)[0]
            mean = float(probs @ hl.centres)
            ax = axes[row, col]
            ax.bar(
                hl.centres,
                probs,
                width=0.9 * hl.bin_width,
                color="tab:blue",
                alpha=0.6,
                label=f"HL-Gauss (mean {mean:.3f})",
            )
            ax.stem(
                two_hot.atoms,
                th_probs,
                linefmt="tab:orange",
                markerfmt="o",
                basefmt=" ",
                label=f"Two-Hot (mean {th_mean:.3f})",
            )
            for edge in hl.edges:
                ax.axvline(float(edge), color="0.85", lw=0.6, zorder=0)
            ax.axvline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
            ax.set_xlim(V_MIN - 1.0, V_MAX + 1.0)
            ax.legend(fontsize=7, loc="upper right" if target < 5 else "upper left")
            if row == 0:
                ax.set_title(f"σ/ς = {ratio:g} (σ = {hl.sigma:.3g})")
            if col == 0:
                ax.set_ylabel("probability")
            if row == len(TARGETS) - 1:
                ax.set_xlabel("value")
    fig.suptitle(
        f"Target histograms on [{V_MIN:g}, {V_MAX:g}] with {NUM_BINS} classes: HL-Gauss bins "
        "(grey edges, bars at centres) vs Two-Hot atoms (stems)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
