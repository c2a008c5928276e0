"""`rlo tui`: a live Textual dashboard over run directories."""

from rlo_cli.tui.app import DEFAULT_REFRESH_S, DashboardApp

__all__ = ["DEFAULT_REFRESH_S", "DashboardApp"]
