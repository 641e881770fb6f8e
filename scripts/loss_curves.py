"""Per-stage training loss curves of a model bundle (issue 23, item 3): every stage's loss per step, as the
trainer recorded it in the bundle (``metadata["loss_history"]``), with its running mean over 50 steps, one panel
a stage, and the steps, batch size and seconds per step the bundle records for it.

    .venv/bin/python scripts/loss_curves.py socialmirror/assets/weights/socialmirror_anny.pt -o docs/loss_curves.png
"""
from __future__ import annotations

import argparse

import numpy as np


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("-o", "--output", required=True, help="image to write (.png)")
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from socialmirror.models.bundle import load_bundle
    meta = load_bundle(args.bundle).metadata
    history, stages = meta.get("loss_history", {}), meta.get("stages", {})
    if not history:
        raise SystemExit(f"{args.bundle} records no loss history")
    cols = 4
    rows = -(-len(history) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (stage, losses) in zip(axes.flat, history.items()):
        losses = np.asarray(losses, dtype=np.float64)
        ax.plot(losses, color="0.75", linewidth=0.6)
        ax.plot(running_mean(losses, args.window), color="C0", linewidth=1.5)
        info = stages.get(stage, {})
        ax.set_title(f"{stage}: {len(losses)} steps, batch {info.get('batch_size', '?')}, "
                     f"{info.get('seconds_per_step', float('nan')):.2f} s/step", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
    for ax in list(axes.flat)[len(history):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    ends = (f"{s} {h[0]:.2f} -> {running_mean(np.asarray(h), args.window)[-1]:.2f}" for s, h in history.items())
    print(f"wrote {args.output}: " + ", ".join(ends))


if __name__ == "__main__":
    main()
