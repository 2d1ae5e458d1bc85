"""The desk's data: models, migrations and every read and write (no Textual, Typer or Rich)."""
