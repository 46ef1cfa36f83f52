"""The page prefetcher fetches the first page itself: a one-page sync starts no thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from offline_addon.errors import ProtocolError
from offline_addon.protocol.answers import ChangePage
from offline_addon.sync.prefetch import PagePrefetcher
from tests.support.records import page, upsert


def _feed(count: int) -> dict[str | None, ChangePage]:
    pages: dict[str | None, ChangePage] = {}
    for n in range(count):
        last = n == count - 1
        pages[None if n == 0 else f"c{n}"] = page(
            [upsert(f"r{n}", 1)],
            f"c{n + 1}",
            has_more=not last,
            holdings={f"r{m}": 1 for m in range(count)} if last else None,
        )
    return pages


def _threads_while_reading(count: int) -> tuple[list[str | None], set[str]]:
    feed = _feed(count)
    fetched_on: set[str] = set()

    def fetch(cursor: str | None) -> Callable[[], ChangePage]:
        fetched_on.add(threading.current_thread().name)
        return lambda: feed[cursor]

    with PagePrefetcher(fetch, None) as pages:
        cursors = [cursor for cursor, _ in pages]
    return cursors, fetched_on


def test_a_one_page_feed_is_read_on_the_callers_thread() -> None:
    cursors, fetched_on = _threads_while_reading(1)
    assert cursors == [None]
    assert fetched_on == {threading.current_thread().name}


def test_later_pages_come_from_the_prefetch_thread_in_order() -> None:
    cursors, fetched_on = _threads_while_reading(4)
    assert cursors == [None, "c1", "c2", "c3"]
    assert fetched_on == {threading.current_thread().name, "offline-prefetch"}


def test_a_first_page_leading_back_to_its_start_is_refused() -> None:
    looping = page([upsert("r", 1)], "c0", has_more=True)
    with (
        PagePrefetcher(lambda cursor: lambda: looping, "c0") as pages,
        pytest.raises(ProtocolError, match="does not advance"),
    ):
        list(pages)


def test_no_more_than_two_pages_are_decoded_at_once() -> None:
    # The writer (this loop) is slower than the fetching: the thread fetches the next answer
    # ahead, but decodes it only once the page before it was taken.
    feed = _feed(8)
    live: set[str | None] = set()
    most = 0

    def fetch(cursor: str | None) -> Callable[[], ChangePage]:
        def decode() -> ChangePage:
            nonlocal most
            live.add(cursor)
            most = max(most, len(live))
            return feed[cursor]

        return decode

    with PagePrefetcher(fetch, None) as pages:
        for cursor, _page in pages:
            time.sleep(0.02)  # writing the page
            live.discard(cursor)  # written: the writer lets it go
    assert most == 2
