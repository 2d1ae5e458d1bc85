"""Reusable widgets and dialogs of the desk's screens."""
