"""Figures about the models themselves: layer tables and training curves."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from zspace.plots.canvas import new_figure
from zspace.plots.limits import fix_axis


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


# Layers that change a tensor's shape, drawn as blocks; normalisation and activations
# belong to the block before them.
_BLOCKS = {"InputLayer": "input", "Conv2D": "conv", "Conv2DTranspose": "deconv",
           "Dense": "dense", "UpSampling2D": "upsample"}
_COLOURS = {"input": "#cfd8dc", "conv": "#90caf9", "deconv": "#a5d6a7",
            "dense": "#ffcc80", "upsample": "#ce93d8"}


def _shape_blocks(model) -> list[tuple[str, tuple[int, ...]]]:
    blocks = []
    for layer in model.layers:
        kind = _BLOCKS.get(type(layer).__name__)
        if kind is None:
            continue
        try:
            shape = tuple(int(d) for d in tuple(layer.output.shape)[1:])
        except (AttributeError, ValueError, TypeError):
            continue
        blocks.append((kind, shape))
    return blocks


def architecture_diagram(chains: dict[str, list[object]]) -> Figure:
    """One row per model: its layers as blocks whose height follows the feature map's
    side and whose width follows the number of channels, labelled with the shape.

    Args:
        chains: Per model name, the functional parts drawn left to right (an
            encoder then its decoder, or a single network).
    """
    import math

    rows = {name: [b for part in parts for b in _shape_blocks(part)]
            for name, parts in chains.items()}
    longest = max(len(blocks) for blocks in rows.values())
    figure = new_figure(1.05 * longest + 1.4, 1.55 * len(rows) + 0.5)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-1.6, 1.05 * longest)
    axes.set_ylim(-1.55 * len(rows) + 0.2, 0.75)
    axes.axis("off")
    for row, (name, blocks) in enumerate(rows.items()):
        y = -1.55 * row
        axes.text(-1.5, y, name, ha="left", va="center", fontsize=9, weight="bold")
        for index, (kind, shape) in enumerate(blocks):
            side = shape[0] if len(shape) == 3 else 1
            channels = shape[-1]
            height = 0.25 + 0.85 * math.log2(side + 1) / math.log2(129)
            width = 0.12 + 0.6 * math.log2(channels + 1) / math.log2(4097)
            x = 1.05 * index
            axes.add_patch(_box(x - width / 2, y - height / 2, width, height,
                                _COLOURS[kind]))
            label = "x".join(str(d) for d in shape)
            axes.text(x, y - height / 2 - 0.08, f"{kind}\n{label}", ha="center",
                      va="top", fontsize=6.5)
            if index:
                axes.annotate("", (x - width / 2 - 0.02, y),
                              (1.05 * (index - 1) + 0.3, y),
                              arrowprops={"arrowstyle": "->", "lw": 0.7,
                                          "color": "#555555"})
    return figure


def _box(x, y, width, height, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, facecolor=colour, edgecolor="#37474f",
                     lw=0.8)


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
                    vae_name: str = "VAE",
                    windows: dict[str, int] | None = None) -> Figure:
    """Per-epoch losses: the VAE's terms and KL share, and every model's total loss.

    Args:
        histories: Per model name, Keras-style history (``total_loss``,
            ``val_total_loss``...). The model named ``vae_name`` must also have
            ``reconstruction_loss``, ``kl_loss`` and ``kl_share``.
        vae_name: Which history is the VAE's.
        windows: Per model name, the epoch the stopping rule compared the last
            epoch with: the span from there to the stop is shaded, and the stop
            marked.
    """
    windows = windows or {}
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
        if index == 1 and vae_name in windows:
            _mark_stop(axes, windows[vae_name], len(vae["total_loss"]), "k")
        _finish(axes, title, [history.get(k, []) for key in keys
                              for k in (key, f"val_{key}")])
    axes = figure.add_subplot(2, 2, 4)
    for name, history in histories.items():
        if name == vae_name:
            continue
        steps = range(1, len(history["total_loss"]) + 1)
        axes.plot(steps, history["total_loss"], marker="o", label=f"{name}")
        if "val_total_loss" in history:
            axes.plot(steps, history["val_total_loss"], marker="s", ls="--",
                      label=f"{name} (test)")
        if name in windows:
            _mark_stop(axes, windows[name], len(steps), axes.lines[-1].get_color())
    _finish(axes, "AE reconstruction loss per image",
            [h.get(k, []) for n, h in histories.items() if n != vae_name
             for k in ("total_loss", "val_total_loss")])
    figure.tight_layout()
    return figure


def _mark_stop(axes, window_start: int, stop: int, colour) -> None:
    axes.axvspan(window_start, stop, color=colour, alpha=0.08, lw=0)
    axes.axvline(stop, color=colour, lw=0.8, ls=":")


def _finish(axes, title: str, shown: list[Sequence[float]]) -> None:
    fix_axis(axes, "y", shown)
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel("epoch")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
