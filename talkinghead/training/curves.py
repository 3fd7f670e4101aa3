"""Loss and validation curves of a training run: a CSV beside the weights and a PNG plot of it."""

from __future__ import annotations

from pathlib import Path


def write_curves(rows: list[dict[str, float]], csv: Path) -> None:
    """Rewrite `csv` with all epochs so far and draw `csv.with_suffix('.png')` (one panel per column)."""
    if not rows:
        return
    keys = list(rows[0])
    csv.write_text(",".join(keys) + "\n" + "\n".join(",".join(f"{r[k]:.5g}" for k in keys) for r in rows) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [k for k in keys if k not in ("epoch", "seconds", "windows")]
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 2.8), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, k in zip(axes[0], cols):
        ax.plot(epochs, [r[k] for r in rows], marker="o")
        ax.set_title(k)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(csv.with_suffix(".png"), dpi=80)
    plt.close(fig)
