"""The hall board (issue 15 item 9) on SQLite and PostgreSQL: what it shows (``store.hall``:
walk-ins only, shortened names, positions and estimates, now serving), and ``GET /board`` on
the public web server: its bounds (``?fontsize=``, hostile query strings get a 4xx), its
Content-Security-Policy, one desk read per second whatever the viewers, and a real browser
(Debian's chromium, Playwright) seeing it refresh by itself after a check-in and a pull.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlmodel import select

from cxdesk.engine.dispatch import unit_of_work
from cxdesk.errors import DeskError
from cxdesk.store import tickets as ops
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import get_user
from cxdesk.store.hall import GUEST, hall_board, hall_name
from cxdesk.store.models import Source, Ticket, utcnow
from cxdesk.store.surveys import submit_response
from cxdesk.web import board as web_board
from cxdesk.web.board import FONT_MAX, FONT_MIN, HallBoardPages
from tests.desk import build_small_desk
from tests.test_survey_web import CHROMIUM
from tests.test_waiting import HANDLED, at, handle_history, pull, resolve
from tests.web_helpers import fetch, raw_status, running_server


@pytest.fixture
def desk(engine: Engine) -> Engine:
    build_small_desk(engine)
    return engine


def open_ticket(engine: Engine, source: Source, customer: str) -> str:
    """A ticket of team 360 opened another way than a check-in (its customer is not here)."""
    with transaction(engine) as s:
        draft = ops.TicketDraft(
            title=f"{source} ticket", team="360", source=source, customer_name=customer
        )
        key = ops.create_ticket(s, actor=None, draft=draft).key
    assert key is not None
    return key


def walk_in(engine: Engine, first: str, last: str, product: str = "360") -> str:
    """A customer checked in at the desk (the check-in survey and its workflow)."""
    answers = {"first_name": first, "last_name": last, "email": "c@example.com",
               "product": product}  # fmt: skip
    with unit_of_work(engine) as s:
        response = submit_response(s, actor=get_user(s, "vera"), survey_name="checkin",
                                   answers=answers)  # fmt: skip
    with read_session(engine) as s:
        key = s.exec(select(Ticket.key).where(Ticket.response_id == response.id)).one()
    assert key is not None
    return key


# -- what the board shows ------------------------------------------------------------------


def test_names_are_a_first_name_and_an_initial_never_a_contact() -> None:
    assert hall_name("Ada Lovelace") == "Ada L."
    assert hall_name("  ada   de la lovelace ") == "ada L."
    assert hall_name("Cher") == "Cher"
    assert hall_name("Zoë Ann O'Neil") == "Zoë O."
    assert hall_name("ada@example.com") == GUEST
    assert hall_name("+44 7700 900123") == GUEST
    assert hall_name("ada@example.com Lovelace") == "Lovelace"
    assert hall_name("Ada <script>") == "Ada"
    assert hall_name("") == GUEST
    assert len(hall_name("A" * 200 + " B")) == 23


def test_only_walk_ins_with_their_position_estimate_and_then_now_serving(desk: Engine) -> None:
    end = handle_history(desk, utcnow() - timedelta(minutes=80), HANDLED)  # the team's pace
    with at(end):
        manual = open_ticket(desk, Source.manual, "Manny Manual")
        campaign = open_ticket(desk, Source.campaign, "Cam Paign")
        ada = walk_in(desk, "Ada", "Lovelace")
        grace = walk_in(desk, "grace@example.com", "+1 555 0100")
        ken = walk_in(desk, "Ken", "Thompson", "Stats iQ")
    with read_session(desk) as s:
        board = hall_board(s, now=end)
    shown = [(w.key, w.customer, w.team, w.position) for w in board.waiting]
    # The manual and campaign tickets are not on the board, but wait ahead in the queue.
    assert shown == [(ada, "Ada L.", "360", 3), (grace, GUEST, "360", 4),
                     (ken, "Ken T.", "Stats iQ", 1)]  # fmt: skip
    # maya and omar are both free: positions 3 and 4 wait one handle time (12 minutes).
    assert board.waiting[0].wait_minutes == pytest.approx(12.0)
    assert board.waiting[2].wait_minutes is None  # Stats iQ has no history: unknown
    assert board.serving == ()

    with at(end + timedelta(minutes=1)):
        assert [pull(desk, "maya", "360") for _ in range(3)] == [manual, campaign, ada]
    with read_session(desk) as s:
        board = hall_board(s, now=end + timedelta(minutes=2))
    assert [(w.key, w.position) for w in board.waiting] == [(grace, 1), (ken, 1)]
    assert [(c.key, c.customer, c.expert, c.team) for c in board.serving] == [
        (ada, "Ada L.", "Maya", "360")
    ]  # the walk-in only: the manual and campaign tickets were called in private
    with read_session(desk) as s:  # called a while ago: no longer "now serving"
        assert hall_board(s, now=end + timedelta(minutes=30)).serving == ()
    resolve(desk, ada)
    with read_session(desk) as s:
        assert hall_board(s, now=end + timedelta(minutes=2)).serving == ()


# -- GET /board ------------------------------------------------------------------------------


def test_the_board_page_is_self_contained_bounded_and_refuses_hostile_addresses(
    desk: Engine,
) -> None:
    walk_in(desk, "Ada", "Lovelace")
    open_ticket(desk, Source.campaign, "Cam Paign")
    with running_server(desk) as base:
        page = fetch(base + "/board")
        assert page.status == 200
        assert "Ada L." in page.html and "Lovelace" not in page.html and "Cam" not in page.html
        assert "c@example.com" not in page.html and "EXP-" not in page.html
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert not re.search(r"https?:|\*", policy)  # nothing from anywhere else
        assert not re.search(r"(src|href)=", page.html)  # no file loaded, not even our own
        [script] = re.findall(r"<script>(.*?)</script>", page.html, re.S)
        assert script == web_board._script()[0]
        assert web_board._script()[1] in policy  # the inline script, by its hash only
        assert "font-size: 32px" in page.html
        for size in (FONT_MIN, 48, FONT_MAX):
            sized = fetch(f"{base}/board?fontsize={size}")
            assert sized.status == 200 and f"font-size: {size}px" in sized.html
        for bad in (
            FONT_MIN - 1,
            FONT_MAX + 1,
            "abc",
            "-20",
            "1e3",
            "40px",
            "%D9%A4%D9%A0",
            "9" * 400,
        ):
            refused = fetch(f"{base}/board?fontsize={bad}")
            assert refused.status == 400, bad
            assert "fontsize must be a whole number" in refused.html
        rows = fetch(base + "/board/rows?fontsize=20")
        assert rows.status == 200 and "Ada L." in rows.html and "<html" not in rows.html
        for query in ("fontsize=%ff", "%00=1", "fontsize=%0d%0aX:1", "a=%E0%A4",
                      "&".join(f"f{i}=1" for i in range(200))):  # fmt: skip
            status = fetch(f"{base}/board?{query}").status
            assert 400 <= status < 500, query
        assert fetch(base + "/board", form={"x": "1"}).status == 405
        assert raw_status(base, b"GET /board?fontsize=\xff HTTP/1.1\r\nHost: x\r\n\r\n") == 400
        assert raw_status(base, b"DELETE /board/rows HTTP/1.1\r\nHost: x\r\n\r\n") == 405


def test_the_rows_are_read_once_per_second_whatever_the_viewers(desk: Engine) -> None:
    moment = [100.0]
    pages = HallBoardPages(desk, clock=lambda: moment[0])
    walk_in(desk, "Ada", "Lovelace")
    found: list[str] = []

    def viewer() -> None:
        for _ in range(5):
            found.append(pages.rows())

    viewers = [threading.Thread(target=viewer) for _ in range(8)]
    for thread in viewers:
        thread.start()
    for thread in viewers:
        thread.join()
    assert pages.reads == 1 and len(found) == 40 and all("Ada L." in f for f in found)
    walk_in(desk, "Grace", "Hopper")
    moment[0] += 0.5
    assert "Grace H." not in pages.rows() and pages.reads == 1  # within the second: cached
    moment[0] += 0.5
    assert "Grace H." in pages.rows() and pages.reads == 2


def test_a_desk_that_cannot_be_read_gives_503_and_is_asked_once_a_second(
    tmp_path: Path,
) -> None:
    gone = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no desk in it
    moment = [100.0]
    pages = HallBoardPages(gone, clock=lambda: moment[0])
    asked: list[str] = []
    event.listen(gone, "before_cursor_execute", lambda *_: asked.append("read"))
    with pytest.raises(DeskError):
        pages.rows()
    tries = len(asked)
    assert tries >= 1
    with pytest.raises(DeskError):
        pages.rows()
    assert len(asked) == tries  # within the second: the failure is kept, the desk not asked
    with running_server(gone) as base:
        page = fetch(base + "/board")
        assert page.status == 503 and "not available" in page.html
        assert fetch(base + "/board/rows").status == 503
    gone.dispose()


@pytest.mark.slow
def test_a_browser_sees_the_board_refresh_by_itself_after_a_check_in_and_a_pull(
    desk: Engine,
) -> None:
    from playwright.sync_api import Request, expect, sync_playwright

    assert CHROMIUM.exists(), "Debian chromium is required: apt-get install -y chromium"
    walk_in(desk, "Ada", "Lovelace")
    requested: list[str] = []
    with running_server(desk) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page()

            def seen(request: Request) -> None:
                requested.append(request.url)

            page.on("request", seen)
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text))
            page.goto(base + "/board?fontsize=24")
            waiting = page.locator("#waiting-heading + table tbody")
            expect(waiting.get_by_role("row")).to_have_count(1)
            expect(waiting).to_contain_text("Ada L.")
            expect(page.locator(".serving")).to_have_count(0)
            grace = walk_in(desk, "Grace", "Hopper")  # no reload: the page asks by itself
            expect(waiting.get_by_role("row")).to_have_count(2)
            expect(waiting.get_by_role("row").nth(1)).to_contain_text("Grace H.")
            expect(waiting.get_by_role("row").nth(1)).to_contain_text("2")
            assert pull(desk, "omar", "360") != grace  # Ada is called
            expect(page.locator(".serving")).to_contain_text("Ada L., please see Omar")
            expect(waiting.get_by_role("row")).to_have_count(1)
            expect(waiting.get_by_role("row").first).to_contain_text("Grace H.")
            assert page.locator("#notice").is_hidden()
        finally:
            browser.close()
    assert requested and all(url.startswith(base + "/board") for url in requested), requested
    assert not [p for p in problems if "Content Security Policy" in p], problems
