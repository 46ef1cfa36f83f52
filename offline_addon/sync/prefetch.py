"""Fetching the next feed page on a background thread while the current one is written.

HTTP, JSON decoding and schema validation of page *n+1* overlap with SQLCipher writing page *n*
(SQLite releases the GIL while it encrypts and writes). The first page is fetched on the
caller's thread, so a sync of one page (the usual small sync) starts no thread. The thread
fetches the next answer at once, but decodes it only once the writer has taken the page
before: at most two pages are decoded (the one being written, the one decoded or waiting)
and one answer's body, whatever the size of the copy. (A third decoded page, waiting while
the next one was decoded, made a first sync of 100k records about 5% faster and held about
4 MB more: past the issue's bound on memory.)

The feed must end: a page whose ``next_cursor`` was seen before in this run (any repeat, not
only the previous one: A, B, A loops too) stops the run, and so does a run longer than its page
budget, set by the first page's ``remaining`` (see :func:`page_budget`).
"""

from __future__ import annotations

import hashlib
import math
import queue
import threading
from collections.abc import Callable, Iterator

from offline_addon.errors import ProtocolError
from offline_addon.protocol.answers import ChangePage

FetchPage = Callable[[str | None], Callable[[], ChangePage]]
"""Fetch the answer at a cursor; the call returned decodes and validates it
(``SyncClient.fetch_changes``)."""
_POLL = 0.05

PAGE_SLACK = 16
"""Pages a run may take beyond twice what the first page's ``remaining`` announces: changes
written on the server during a long first sync add pages; a feed that never ends does not."""
MAX_PAGES_PER_RUN = 10_000
"""25 million changes at 2500 per page: more than any copy, whatever ``remaining`` claims."""


def page_budget(first_remaining: int, page_limit: int) -> int:
    """How many pages a run may take, from the first page's ``remaining``: twice the pages it
    announces plus :data:`PAGE_SLACK` (a feed that grows during the run still fits), at most
    :data:`MAX_PAGES_PER_RUN`."""
    announced = math.ceil(first_remaining / max(1, page_limit))
    return min(MAX_PAGES_PER_RUN, 1 + 2 * announced + PAGE_SLACK)


class PagePrefetcher:
    """Iterate ``(from_cursor, page)`` pairs from ``start`` to the last page.

    Use as a context manager: leaving it stops and joins the thread, also on errors.
    """

    def __init__(self, fetch: FetchPage, start: str | None, *, page_limit: int = 1) -> None:
        self._fetch = fetch
        self._start = start
        self._page_limit = page_limit
        self._queue: queue.Queue[tuple[str | None, ChangePage] | BaseException] = queue.Queue(
            maxsize=1
        )
        self._stop = threading.Event()
        self._taken = threading.Event()
        self._thread = threading.Thread(target=self._run, name="offline-prefetch", daemon=True)
        self._seen = {_key(start)} if start is not None else set()
        self._budget = MAX_PAGES_PER_RUN
        self._after_first: str | None = None

    def __enter__(self) -> PagePrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(_POLL)
        self._drain()

    def __iter__(self) -> Iterator[tuple[str | None, ChangePage]]:
        # The first page is fetched on the caller's thread: a small sync (one page) then
        # starts no thread at all (about 1.5 ms of its 10); the thread fetches from page 2,
        # while page 1 is written.
        cursor = self._start
        page = self._fetch(cursor)()
        self._budget = page_budget(page.remaining, self._page_limit)
        if page.has_more:
            _check_advances(page, self._seen, 1, self._budget)
            self._after_first = page.next_cursor
            self._thread.start()
        yield cursor, page
        if not page.has_more:
            return
        while True:
            item = self._queue.get()
            self._taken.set()
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
        cursor = self._after_first
        pages = 1
        self._taken.set()  # the first page was the caller's
        while not self._stop.is_set():
            from_cursor = cursor
            try:
                decode = self._fetch(cursor)
                if not self._wait_taken():
                    return
                page = decode()
                del decode  # the body
                pages += 1
                if page.has_more:
                    _check_advances(page, self._seen, pages, self._budget)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                self._offer(exc)
                return
            more, cursor = page.has_more, page.next_cursor
            self._taken.clear()
            self._offer((from_cursor, page))
            del page  # the writer's now: not held here once it is done with it
            if not more:
                return

    def _wait_taken(self) -> bool:
        """Wait until the consumer has taken the page offered; False when stopped."""
        while not self._taken.wait(_POLL):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _offer(self, item: tuple[str | None, ChangePage] | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue


def _key(cursor: str) -> bytes:
    # 16 bytes per cursor seen, whatever the server makes its cursors' length.
    return hashlib.blake2b(cursor.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _check_advances(page: ChangePage, seen: set[bytes], pages: int, budget: int) -> None:
    """ProtocolError when a page that says "more" leads to a cursor seen before in this run,
    or the run has used up its page budget."""
    key = _key(page.next_cursor)
    if key in seen:
        raise ProtocolError(
            "The server's change feed does not advance (it led back to a position it had "
            "already sent); the sync stopped. Tell your administrator."
        )
    seen.add(key)
    if pages >= budget:
        raise ProtocolError(
            f"The server's change feed did not end after {pages} pages, far more than it "
            "announced; what was received is kept and the next sync continues. Tell your "
            "administrator."
        )
