"""``DeskFooter`` (cxdesk/widgets/footer.py): the keys a screen offers, rebuilt only when they
change, and not while another screen covers it; Textual's Footer rebuilds after every bindings
change (the first test fails with it)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Footer
from textual.widgets._footer import FooterKey

from cxdesk.widgets.footer import DeskFooter
from tests.tui_helpers import wait_until


class Keys(Screen[None]):
    BINDINGS = [Binding("n", "pull", "Pull next"), Binding("d", "drop", "Drop")]

    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer = footer
        self.can_drop = True

    def compose(self) -> ComposeResult:
        yield Button("one", id="one")
        yield Button("two", id="two")
        yield self.footer()

    def on_mount(self) -> None:
        self.query_one("#one").focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.can_drop if action == "drop" else True


class Counted(App[None]):
    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer = footer
        self.rebuilds = 0

    def on_mount(self) -> None:
        self.push_screen(Keys(self.footer))


def shown(footer: Footer) -> list[str]:
    """The keys' descriptions, without the palette's (always there)."""
    return [key.description for key in footer.query(FooterKey) if key.description != "palette"]


def run(footer: type[Footer], script: Any) -> None:
    async def main() -> None:
        app = Counted(footer)
        async with app.run_test(size=(100, 20)) as pilot:
            await script(app, pilot)

    asyncio.run(main())


def count_rebuilds(app: Counted, footer: Footer) -> None:
    recompose = footer.recompose

    async def counted() -> None:
        app.rebuilds += 1
        await recompose()

    footer.recompose = counted  # type: ignore[method-assign]


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):  # a bindings change's rebuild runs after the next refresh
        await pilot.pause()


def test_the_keys_are_rebuilt_only_when_they_change() -> None:
    async def script(app: Counted, pilot: Pilot[Any]) -> None:
        screen = app.screen
        assert isinstance(screen, Keys)
        footer = screen.query_one(DeskFooter)
        await wait_until(pilot, lambda: "Pull next" in shown(footer), "the keys drawn")
        assert shown(footer) == ["Pull next", "Drop"]
        count_rebuilds(app, footer)
        for target in ("#two", "#one", "#two"):  # the same keys on either button
            screen.query_one(target).focus()
            await settle(pilot)
        screen.refresh_bindings()
        await settle(pilot)
        assert app.rebuilds == 0
        screen.can_drop = False  # a key gone: rebuilt, once
        screen.refresh_bindings()
        screen.refresh_bindings()
        await wait_until(pilot, lambda: shown(footer) == ["Pull next"], "the key gone")
        await settle(pilot)
        assert app.rebuilds == 1

    run(DeskFooter, script)


def test_a_covered_screen_rebuilds_its_keys_when_it_comes_back() -> None:
    async def script(app: Counted, pilot: Pilot[Any]) -> None:
        under = app.screen
        assert isinstance(under, Keys)
        footer = under.query_one(DeskFooter)
        await wait_until(pilot, lambda: "Drop" in shown(footer), "the keys drawn")
        count_rebuilds(app, footer)
        await app.push_screen(Keys(DeskFooter))
        under.can_drop = False
        under.refresh_bindings()  # while covered: not rebuilt
        await settle(pilot)
        assert app.rebuilds == 0
        assert shown(footer) == ["Pull next", "Drop"]
        await app.pop_screen()
        await wait_until(pilot, lambda: shown(footer) == ["Pull next"], "the keys on return")
        assert app.rebuilds == 1

    run(DeskFooter, script)
