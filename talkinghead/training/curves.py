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
    # one panel for the loss, one per family of validation figures (few panels: drawing each costs ~1 s)
    panels = [
        ["loss"],
        [k for k in cols if k != "loss" and not k.startswith("sync_")],
        [k for k in cols if k.startswith("sync_")],
    ]
    panels = [p for p in panels if p and all(k in cols for k in p)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.0), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, panel in zip(axes[0], panels):
        for k in panel:
            ax.plot(epochs, [r[k] for r in rows], marker="o", label=k)
        ax.set_title(panel[0] if len(panel) == 1 else "validation")
        ax.set_xlabel("epoch")
        if len(panel) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(csv.with_suffix(".png"), dpi=80)
    plt.close(fig)
