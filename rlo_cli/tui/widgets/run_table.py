"""The run list: one row per run directory, updated cell by cell as status files change."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from rlo_cli.tui.format import STATE_STYLES, best_text, duration_text, elapsed_seconds, progress_text
from rlo_cli.tui.reader import RunSummary

COLUMNS = (("name", "Run"), ("command", "Command"), ("state", "State"),
           ("progress", "Progress"), ("best", "Best"), ("elapsed", "Elapsed"))
COMPACT_HIDDEN = ("command",)  # dropped on narrow terminals; run names usually say enough


def run_cells(summary: RunSummary, marked: bool, now: float, bar_width: int = 8) -> dict[str, Text]:
    """The cells of one row; a marked run's name starts with a dot."""
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
        self._shown: dict[str, dict[str, Text]] = {}

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
        shown = self._shown
        self.clear(columns=True)
        self._shown = {}
        self._add_columns()
        for key, cells in shown.items():
            self.add_row(*(cells[column] for column in self._columns), key=key)
            self._shown[key] = cells
        if shown:
            self.move_cursor(row=min(cursor, len(shown) - 1), animate=False)

    def show_runs(self, summaries: list[RunSummary], marked: set[Path], now: float) -> None:
        """Add new runs, drop deleted ones and rewrite only the cells that changed."""
        wanted = {str(summary.path) for summary in summaries}
        for key in list(self._shown):
            if key not in wanted:
                self.remove_row(key)
                del self._shown[key]
        for summary in summaries:
            key = str(summary.path)
            cells = run_cells(summary, summary.path in marked, now, 5 if self.compact else 8)
            shown = self._shown.get(key)
            if shown is None:
                self.add_row(*(cells[column] for column in self._columns), key=key)
            else:
                for column in self._columns:
                    if shown[column] != cells[column]:
                        self.update_cell(key, column, cells[column], update_width=True)
            self._shown[key] = cells

    def path_at_cursor(self) -> Path | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return Path(row_key.value)

    def move_to(self, path: Path) -> None:
        key = str(path)
        if key in self._shown:
            self.move_cursor(row=self.get_row_index(key))
