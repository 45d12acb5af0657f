"""Figures about the models themselves: layer tables and training curves."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from zspace.plots.common import new_figure


def layer_rows(model) -> list[tuple[str, str, str, int]]:
    """(name, layer type, output shape, parameters) of each layer of a functional
    Keras model, the batch dimension left out of the shapes."""
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)[1:]
        except (AttributeError, ValueError):
            shape = ()
        rows.append((layer.name, type(layer).__name__,
                     "x".join(str(d) for d in shape), int(layer.count_params())))
    return rows


def architecture_tables(parts: dict[str, object]) -> Figure:
    """Monospaced layer tables, one block per named part (e.g. ``"VAE encoder"``)."""
    lines = []
    for title, model in parts.items():
        rows = layer_rows(model)
        total = sum(row[3] for row in rows)
        lines.append(f"{title}  ({total:,} parameters)")
        lines.append(f"  {'layer':<28}{'type':<24}{'output':<16}{'parameters':>12}")
        for name, kind, shape, count in rows:
            lines.append(f"  {name[:27]:<28}{kind[:23]:<24}{shape:<16}{count:>12,}")
        lines.append("")
    height = 0.17 * len(lines) + 0.3
    figure = new_figure(9.0, height)
    figure.text(0.01, 1 - 0.12 / height, "\n".join(lines), family="monospace",
                fontsize=8, va="top", ha="left")
    return figure


def training_curves(histories: dict[str, dict[str, Sequence[float]]],
                    vae_name: str = "VAE") -> Figure:
    """Per-epoch losses: the VAE's terms and KL share, and every model's total loss.

    Args:
        histories: Per model name, Keras-style history (``total_loss``,
            ``val_total_loss``...). The model named ``vae_name`` must also have
            ``reconstruction_loss``, ``kl_loss`` and ``kl_share``.
        vae_name: Which history is the VAE's.
    """
    figure = new_figure(11.0, 6.4)
    vae = histories[vae_name]
    epochs = range(1, len(vae["total_loss"]) + 1)
    panels = [
        ("VAE loss per image", ["total_loss", "reconstruction_loss"], vae),
        ("VAE KL loss per image", ["kl_loss"], vae),
        ("VAE KL share of the total loss", ["kl_share"], vae),
    ]
    for index, (title, keys, history) in enumerate(panels, 1):
        axes = figure.add_subplot(2, 2, index)
        for key in keys:
            axes.plot(epochs, history[key], marker="o", label=key.replace("_", " "))
            if f"val_{key}" in history:
                axes.plot(epochs, history[f"val_{key}"], marker="s", ls="--",
                          label=f"{key.replace('_', ' ')} (test)")
        _finish(axes, title)
    axes = figure.add_subplot(2, 2, 4)
    for name, history in histories.items():
        if name == vae_name:
            continue
        steps = range(1, len(history["total_loss"]) + 1)
        axes.plot(steps, history["total_loss"], marker="o", label=f"{name}")
        if "val_total_loss" in history:
            axes.plot(steps, history["val_total_loss"], marker="s", ls="--",
                      label=f"{name} (test)")
    _finish(axes, "AE reconstruction loss per image")
    figure.tight_layout()
    return figure


def _finish(axes, title: str) -> None:
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel("epoch")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
