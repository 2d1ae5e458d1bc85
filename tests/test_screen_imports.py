"""A screen imported on the UI thread waits while the store's thread imports SQLAlchemy
(``desk_opening.IMPORTS``): two threads importing it at once could each find a module the
other had half done ("partially initialized module"), as a volunteer's login did when its
check-in screen was imported while the store loaded."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from cxdesk import app as app_module
from cxdesk.desk_opening import HEAVY, IMPORTS


def test_a_screen_not_imported_yet_waits_for_the_stores_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cxdesk_probe_screen.py").write_text("class ProbeScreen:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(app_module.SCREEN_CLASSES, "Probe", ("cxdesk_probe_screen", "ProbeScreen"))
    monkeypatch.delitem(sys.modules, "cxdesk_probe_screen", raising=False)
    found: list[type] = []
    opener = threading.Thread(target=lambda: found.append(app_module.screen_class("Probe")))
    with IMPORTS:  # the store's thread importing
        opener.start()
        opener.join(timeout=0.5)
        assert "cxdesk_probe_screen" not in sys.modules  # not imported meanwhile
    opener.join()
    assert [cls.__name__ for cls in found] == ["ProbeScreen"]
    monkeypatch.delitem(sys.modules, "cxdesk_probe_screen")


def test_the_store_imports_sqlalchemy_first_holding_the_lock() -> None:
    assert HEAVY[0] == "sqlmodel"  # SQLAlchemy with it, then the models that use both
    assert {"cxdesk.store.models", "cxdesk.store.db"} <= set(HEAVY)
