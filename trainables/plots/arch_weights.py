"""plots/arch_weights.png of a search run: every architecture table of the space
(`searchspaces.views`: rows = layers / edges / slots, columns = candidates) as heatmaps
at a few epochs from the first to the last, one band per table, so the drift of the
distributions over the search is visible at a glance."""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure

from trainables.loops import SearchHistory, TableHistory
from trainables.plots.canvas import message, render

SNAPSHOTS = 4  # epochs shown per table, first and last included
MAX_TICKS = 16  # column labels per heatmap; more are thinned
ROW_INCHES = 0.14
LABEL_INCHES = 1.3  # row labels, left of the first heatmap
TITLE_INCHES = 0.55  # the table's name, then the epoch
GAP_INCHES = 0.12
BAR_INCHES = 0.15
COLOURS = colormaps["viridis"].with_extremes(bad="#dddddd")  # grey: no such candidate


def snapshot_indices(count: int, wanted: int = SNAPSHOTS) -> list[int]:
    """Up to `wanted` evenly spaced indices into `count` epochs, first and last included."""
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def colour_limit(table: TableHistory) -> float:
    """1 for probabilities; otherwise the largest value the table ever held."""
    largest = max(float(values.nan_to_num(0.0).max()) for values in table.values)
    return 1.0 if largest <= 1.0 else largest


def draw_table(figure: Figure, name: str, table: TableHistory, epochs: list[int],
               box: tuple[float, float, float, float], panel: float) -> None:
    """One band: the table at each shown epoch, then the colour bar. `box` is the band's
    (left, bottom, width, height) in inches."""
    inches = figure.get_size_inches()
    left, bottom, _, band_height = box
    axis_bottom = bottom + tick_inches(table)
    axis_height = band_height - tick_inches(table) - TITLE_INCHES

    def axes_at(x: float, width: float):
        return figure.add_axes((x / inches[0], axis_bottom / inches[1], width / inches[0],
                                axis_height / inches[1]))

    limit, columns = colour_limit(table), table.columns
    step = max(1, -(-len(columns) // MAX_TICKS))
    shown = snapshot_indices(len(table.values))
    for position, index in enumerate(shown):
        ax = axes_at(left + position * (panel + GAP_INCHES), panel)
        image = ax.imshow(table.values[index].numpy(), vmin=0.0, vmax=limit, cmap=COLOURS,
                          aspect="auto", interpolation="nearest")
        ax.set_title(f"epoch {epochs[index]}", fontsize=7, loc="left")
        ax.set_xticks(range(0, len(columns), step), columns[::step], rotation=90, fontsize=6)
        ax.set_yticks(range(len(table.rows)), table.rows if position == 0 else [], fontsize=6)
    figure.text(left / inches[0], (bottom + band_height - 0.05) / inches[1], name, fontsize=9,
                va="top")
    bar = axes_at(left + len(shown) * (panel + GAP_INCHES), BAR_INCHES)
    figure.colorbar(image, cax=bar).set_label(table.unit, fontsize=7)
    bar.tick_params(labelsize=6)


def tick_inches(table: TableHistory) -> float:
    return 0.15 + 0.055 * max(map(len, table.columns))  # rotated column labels


def height(table: TableHistory) -> float:
    return TITLE_INCHES + tick_inches(table) + max(0.5, ROW_INCHES * len(table.rows)) + 0.15


def panel_inches(tables: list[TableHistory]) -> float:
    columns = max(len(t.columns) for t in tables)
    return min(5.0, max(1.6, 0.3 + 0.22 * columns))


def drawn(history: SearchHistory) -> list[tuple[str, TableHistory]]:
    return [(name, t) for name, t in history.tables.items() if t.values]


def draw_arch_weights(figure: Figure, history: SearchHistory) -> None:
    tables = drawn(history)
    if not tables:
        message(figure, "no architecture parameters: nothing was searched")
        return
    top = figure.get_size_inches()[1]
    panel = panel_inches([t for _, t in tables])
    for name, table in tables:
        top -= height(table)
        draw_table(figure, name, table, history.epochs[-len(table.values):],
                   (LABEL_INCHES, top, 0.0, height(table)), panel)


def figure_size(history: SearchHistory) -> tuple[float, float]:
    tables = [t for _, t in drawn(history)]
    if not tables:
        return 6.0, 2.0
    shown = max(len(snapshot_indices(len(t.values))) for t in tables)
    width = LABEL_INCHES + shown * (panel_inches(tables) + GAP_INCHES) + BAR_INCHES + 0.7
    return width, sum(height(t) for t in tables)


def arch_weights_png(history: SearchHistory) -> bytes:
    return render(lambda figure: draw_arch_weights(figure, history), figure_size(history))
