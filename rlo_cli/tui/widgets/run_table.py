"""The run list: one row per run directory, updated cell by cell as status files change."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from rlo_cli.tui.format import STATE_STYLES, best_text, duration_text, elapsed_seconds, progress_text
from rlo_cli.tui.reader import RunSummary

COLUMNS = (("name", "Run"), ("command", "Command"), ("state", "State"),
           ("progress", "Progress"), ("best", "Best"), ("elapsed", "Elapsed"))
# Columns dropped on narrow terminals. Run names usually contain the data set and network.
COMPACT_HIDDEN = ("command",)


def run_cells(summary: RunSummary, marked: bool, now: float, bar_width: int = 8) -> dict[str, Text]:
    """Build the cells of one row. A marked run's name starts with a dot."""
    status = summary.status
    return {
        "name": Text.assemble(("● " if marked else "  ", "bold yellow"),
                              (summary.name, "bold" if summary.state == "running" else "")),
        "command": Text(summary.command),
        "state": Text(summary.state, style=STATE_STYLES.get(summary.state, "dim")),
        "progress": Text(progress_text(status, summary.state, bar_width)),
        "best": Text(best_text(status)),
        "elapsed": Text(duration_text(elapsed_seconds(status, summary.state, now))),
    }


class RunTable(DataTable):
    """Run list with a row cursor; the row key is the run directory path."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.compact = False
        self._columns: tuple[str, ...] = ()
        self._displayed: dict[str, dict[str, Text]] = {}

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self._columns = tuple(key for key, _ in COLUMNS
                              if not (self.compact and key in COMPACT_HIDDEN))
        for key, label in COLUMNS:
            if key in self._columns:
                self.add_column(label, key=key)

    def set_compact(self, compact: bool) -> None:
        """Show or hide the columns in COMPACT_HIDDEN, keeping the rows and the cursor."""
        if compact == self.compact:
            return
        self.compact = compact
        cursor = self.cursor_row
        displayed = self._displayed
        self.clear(columns=True)
        self._displayed = {}
        self._add_columns()
        for key, cells in displayed.items():
            self.add_row(*(cells[column] for column in self._columns), key=key)
            self._displayed[key] = cells
        if displayed:
            self.move_cursor(row=min(cursor, len(displayed) - 1), animate=False)

    def show_runs(self, summaries: list[RunSummary], marked: set[Path], now: float) -> None:
        """Add new runs, drop deleted ones and rewrite only the cells that changed."""
        listed = {str(summary.path) for summary in summaries}
        for key in list(self._displayed):
            if key not in listed:
                self.remove_row(key)
                del self._displayed[key]
        for summary in summaries:
            key = str(summary.path)
            cells = run_cells(summary, summary.path in marked, now, 5 if self.compact else 8)
            previous = self._displayed.get(key)
            if previous is None:
                self.add_row(*(cells[column] for column in self._columns), key=key)
            else:
                for column in self._columns:
                    if previous[column] != cells[column]:
                        self.update_cell(key, column, cells[column], update_width=True)
            self._displayed[key] = cells

    def path_at_cursor(self) -> Path | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return Path(row_key.value)

    def move_to(self, path: Path) -> None:
        key = str(path)
        if key in self._displayed:
            self.move_cursor(row=self.get_row_index(key))
