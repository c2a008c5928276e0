"""Widgets of the dashboard, one panel per module."""
