"""Small matplotlib plots for the lessons: loss curve, length histogram, score bars."""

from collections.abc import Mapping, Sequence
from pathlib import Path


def _save(fig, path: str | Path | None):
    if path is not None:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    return fig


def loss_curve(
    log_history: Sequence[Mapping],
    path: str | Path | None = None,
    key: str = "loss",
    title: str = "Loss curve",
):
    """Plot one logged value per step from ``trainer.state.log_history``: the training loss, or with
    ``key="reward"`` the mean reward of a GRPO run (notebook 09)."""
    import matplotlib.pyplot as plt

    points = [(h["step"], h[key]) for h in log_history if h.get(key) is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([s for s, _ in points], [v for _, v in points], marker=".", linewidth=1)
    ax.set(xlabel="step", ylabel="training " + key, title=title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def length_histogram(
    lengths: Sequence[int], max_seq_length: int | None = None, path: str | Path | None = None
):
    """Histogram of token lengths, with the max_seq_length limit drawn if given."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(lengths, bins=30)
    if max_seq_length is not None and max_seq_length <= max(lengths) * 1.5:
        ax.axvline(max_seq_length, color="red", linestyle="--", label="max_seq_length")
        ax.legend()
    ax.set(xlabel="tokens per example", ylabel="examples", title="Token lengths")
    return _save(fig, path)


def score_bars(
    scores: Mapping[str, Mapping[str, float]],
    path: str | Path | None = None,
    ylabel: str = "exact match",
):
    """Grouped bars: ``scores[model][family] -> value`` (e.g. base vs fine-tuned per task family)."""
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(scores)
    families = list(next(iter(scores.values())))
    x = np.arange(len(families))
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6, len(families) * 1.1), 3.4))
    for i, m in enumerate(models):
        ax.bar(x + i * width - 0.4 + width / 2, [scores[m][f] for f in families], width, label=m)
    ax.set_xticks(x, families, rotation=30, ha="right")
    ax.set(ylabel=ylabel, ylim=(0, 1.05), title="Score per task family")
    ax.legend()
    return _save(fig, path)
