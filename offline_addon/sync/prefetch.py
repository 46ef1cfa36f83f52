"""Fetching the next feed page on a background thread while the current one is written.

HTTP, JSON decoding and schema validation of page *n+1* overlap with SQLCipher writing page *n*
(SQLite releases the GIL while it encrypts and writes). The queue holds at most one finished
page, so memory stays bounded by about three pages whatever the size of the copy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from offline_addon.errors import ProtocolError
from offline_addon.protocol.answers import ChangePage

FetchPage = Callable[[str | None], ChangePage]
_POLL = 0.05


class PagePrefetcher:
    """Iterate ``(from_cursor, page)`` pairs from ``start`` to the last page.

    Use as a context manager: leaving it stops and joins the thread, also on errors.
    """

    def __init__(self, fetch: FetchPage, start: str | None) -> None:
        self._fetch = fetch
        self._start = start
        self._queue: queue.Queue[tuple[str | None, ChangePage] | BaseException] = queue.Queue(
            maxsize=1
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="offline-prefetch", daemon=True)

    def __enter__(self) -> PagePrefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(_POLL)
        self._drain()

    def __iter__(self) -> Iterator[tuple[str | None, ChangePage]]:
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item[1].has_more:
                return

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _run(self) -> None:
        cursor = self._start
        while not self._stop.is_set():
            try:
                page = self._fetch(cursor)
                if page.has_more and not page.changes and page.next_cursor == cursor:
                    raise ProtocolError(
                        "The server's change feed does not advance; the sync stopped. "
                        "Tell your administrator."
                    )
            except BaseException as exc:  # handed to the consumer, which re-raises it
                self._offer(exc)
                return
            self._offer((cursor, page))
            if not page.has_more:
                return
            cursor = page.next_cursor

    def _offer(self, item: tuple[str | None, ChangePage] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue
