"""The workflow engine: events -> workflows (conditions, tasks) -> tickets and outbox rows.

Never imports Textual; the CLI, the TUI and the worker all drive it the same way.
"""
