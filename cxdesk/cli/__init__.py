"""The admin CLI (Typer): one module per command group, all calling store/engine operations."""
