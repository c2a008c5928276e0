"""Modal screens: the key help, and the stop-or-detach question when a launched run is live."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

KEYS = (
    ("↑ ↓", "select a run"),
    ("← →", "previous or next chart"),
    ("space", "mark the run for comparison; marked runs are overlaid on one chart"),
    ("l", "toggle log scale on the y axis"),
    ("p", "pause or resume reading the run files"),
    ("e", "export the current chart to PNG, one file per metric, in the selected run's "
          "plots/ folder"),
    ("?", "show this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold yellow", no_wrap=True)
        table.add_column()
        for key, description in KEYS:
            table.add_row(key, description)
        with Vertical(id="help-box", classes="dialog"):
            yield Static("Keys", classes="dialog-title")
            yield Static(table)
            yield Static("Press Esc or ? to close.", classes="dialog-hint")


class QuitScreen(ModalScreen[str | None]):
    """Asks whether quitting the dashboard stops the run it launched or leaves it running.

    Dismisses with "stop", "detach", or None to keep the dashboard open.
    """

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop the run"),
        Binding("d", "choose('detach')", "Detach"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, run_name: str) -> None:
        super().__init__()
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box", classes="dialog"):
            yield Static(f"{self.run_name} is still running.", classes="dialog-title")
            yield Static("Stop it, or detach and let it keep writing its run directory?")
            with Horizontal(id="quit-buttons"):
                yield Button("Stop run (s)", id="stop", variant="error")
                yield Button("Detach (d)", id="detach", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
