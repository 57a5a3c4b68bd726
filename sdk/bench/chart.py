"""The PNG chart of `edgepose bench compare --plot`: per-frame latency of each configuration, by device."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.io.atomic import atomic_output

XLABEL = "ms per frame (p50, whisker to p90)"


def bar_label(row: dict, with_input: bool = False) -> str:
    """'pi5  movenet-lightning-int8 litert 4t': the device label, then what ran (and on what input)."""
    parts = [row["label"], " ", row["model"]]
    if row["precision"] not in row["model"]:
        parts.append(f" {row['precision']}")
    parts.append(f" {row['backend']}" + (f"+{row['delegate']}" if row.get("delegate") else ""))
    parts.append(f" {row['threads']}t")
    if row.get("mode") == "multi":
        parts.append(" multi")
    if with_input:
        parts.append(f" {row['input_kind']} {row['input_width']}x{row['input_height']}")
        parts.append(" stills" if row.get("stills") else "")
    return "".join(parts)


def _plain(text: str) -> str:
    """Text matplotlib draws as it is: two '$' would otherwise start math mode (and '$\\x$' fail to parse)."""
    return text.replace("$", r"\$")


def plot_latency(rows: Sequence[dict], out: str | Path, title: str | None = None) -> None:
    """Horizontal bars of pipeline p50 (whisker to p90) with the invoke p50 inside, colored by device.

    `rows` are ResultsDB.query() rows, in the order to draw (top to bottom). With history rows, each
    configuration is drawn once, from its newest row (query orders each configuration oldest first).
    """
    bars = list({_bar_key(r): r for r in rows}.values())
    if not bars:
        raise EdgeposeError("nothing to plot: no results")
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise EdgeposeError("the latency chart needs matplotlib: pip install 'edgepose[plot]'") from None

    devices = list(dict.fromkeys(r["label"] for r in bars))
    # The input goes into the bar labels only when it tells bars apart.
    with_input = len({_input_key(r) for r in bars}) > 1
    palette = colormaps["tab10"]
    color = {d: palette(i % 10) for i, d in enumerate(devices)}
    n = len(bars)
    y = list(range(n))
    p50 = [r["pipeline_p50_ms"] for r in bars]
    p90 = [max(r["pipeline_p90_ms"], r["pipeline_p50_ms"]) for r in bars]
    invoke = [r["invoke_p50_ms"] for r in bars]

    # Figure() + an Agg canvas, not pyplot: no global backend switch, no GUI, safe in a library call.
    fig = Figure(figsize=(10, 1.6 + 0.36 * n), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(
        y,
        p50,
        height=0.7,
        color=[color[r["label"]] for r in bars],
        xerr=[[0.0] * n, [hi - lo for lo, hi in zip(p50, p90)]],
        error_kw={"ecolor": "0.2", "capsize": 3, "elinewidth": 1},
    )
    # A pale inner bar: how much of the frame is the model's invoke alone.
    ax.barh(y, invoke, height=0.26, color="white", alpha=0.6)
    right = max(p90)
    for yi, lo, hi in zip(y, p50, p90):
        ax.text(hi + right * 0.01, yi, f"{lo:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, labels=[_plain(bar_label(r, with_input)) for r in bars], fontsize=9 if n <= 30 else 7)
    ax.invert_yaxis()
    ax.set_xlim(0, right * 1.12)
    ax.set_xlabel(XLABEL)
    ax.set_title(title or "edgepose bench: per-frame latency", fontsize=12)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(color=color[d], label=_plain(d)) for d in devices]
    handles.append(Patch(facecolor="white", edgecolor="0.5", label="invoke p50 (model alone)"))
    # Below the axes, so it never hides a bar.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8, frameon=False)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")


def _input_key(row: dict) -> tuple:
    return row.get("input_kind"), row.get("input_width"), row.get("input_height"), bool(row.get("stills"))


def _bar_key(row: dict) -> tuple:
    """One bar per configuration: bench.db.CONFIG_KEY."""
    return (
        row["label"],
        row["device_id"],
        row["model"],
        row["precision"],
        row["backend"],
        row.get("delegate"),
        row["threads"],
        row.get("mode"),
        *_input_key(row),
    )
