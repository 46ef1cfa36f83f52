"""Turning what the user types into safe, index-backed full-text and substring queries."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from offline_addon.errors import InvalidArgument
from offline_addon.storage.migrations import FTS_TOKENIZER, RECORDS_FTS_BODY
from offline_addon.storage.page_writer import Pending

BUILT = Pending(names=False, text=False)
"""Both search indexes built (none waits)."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

MAX_QUERY_CHARS = 1000
"""The longest search, the same as the server's ``q`` (``docs/sync-api.yaml``)."""
MAX_QUERY_WORDS = 16
"""Each word is a prefix query of the full-text index; 16 keep any search well under a second
on 100k records (a 100,000-word query took 18.7 s), and nobody types more to find a record."""


def check_query(query: object) -> None:
    """Raise InvalidArgument unless ``query`` is a search the add-on runs: text of at most
    :data:`MAX_QUERY_CHARS` characters and :data:`MAX_QUERY_WORDS` words, without control
    characters (NUL, line breaks, ...)."""
    if not isinstance(query, str):
        raise InvalidArgument("Search for text (a name or words of a record).")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(
            f"Search for at most {MAX_QUERY_CHARS} characters; shorten the search."
        )
    if _CONTROL_OR_SURROGATE.search(query):
        raise InvalidArgument(
            "A search cannot hold control characters (such as NUL or a line break); type "
            "the words again."
        )
    if len(_WORD.findall(query)) > MAX_QUERY_WORDS:
        raise InvalidArgument(
            f"Search for at most {MAX_QUERY_WORDS} words; leave out some of them."
        )


def query_terms(db: Any, text: str) -> list[str]:
    """The words of ``text`` as the full-text index holds words, each as an FTS5 term: split
    and folded by SQLite's own tokenizer (a temporary in-memory FTS5 table with the index's
    tokenizer), so that every term is one token of the index, which keeps no positions and
    so cannot match a phrase (Python's idea of a letter is not SQLite's in every case).

    A typed word is a prefix (``"rout"*``). A typed word that the tokenizer splits
    (``rack_04``, ``e-mail``) asks for its parts: all but the last as whole words, the last
    as a prefix, the nearest an index without positions comes to the phrase it was.
    """
    chunks = text.split()
    if not chunks:
        return []
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_text"
        f" USING fts5(q, tokenize='{FTS_TOKENIZER}')"
    )
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms"
        " USING fts5vocab(temp, query_text, instance)"
    )
    try:
        db.executemany(
            "INSERT INTO temp.query_text(rowid, q) VALUES (?, ?)", list(enumerate(chunks, 1))
        )
        rows = db.execute("SELECT doc, term FROM temp.query_terms ORDER BY doc, offset").fetchall()
    finally:
        db.execute("DELETE FROM temp.query_text")
    terms = []
    for n, (doc, term) in enumerate(rows):
        last = n + 1 == len(rows) or rows[n + 1][0] != doc
        terms.append('"' + term.replace('"', '""') + ('"*' if last else '"'))
    # A word typed twice adds nothing but another pass over its postings.
    return list(dict.fromkeys(terms))


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression requiring every term (from :func:`query_terms`, quoted, so
    that FTS5 operators typed by the user, AND, NEAR, ``*``, ``:``, are words); an empty
    string means "no words"."""
    return " AND ".join(terms)


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) matching ``text`` anywhere."""
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Below this many characters the trigram index finds nothing (a trigram needs three), so the
# name substring falls back to a LIKE scan.
TRIGRAM_MIN_CHARS = 3
# Enough trigrams to make the candidates few; more only make the index lookup slower.
MAX_TRIGRAMS = 12
DEFAULT_LIMIT = 500
"""How many records a search returns at most (the first ones by name)."""

_COLUMNS = "id, rev, name, fields"
_ORDER = "ORDER BY name COLLATE NOCASE, id"


def trigram_match(text: str) -> str:
    """An FTS5 MATCH expression over the trigram index: every trigram of ``text`` (at most
    :data:`MAX_TRIGRAMS`, each quoted so no operators) required. It finds a superset of the
    names containing ``text``; the caller re-checks with LIKE."""
    grams = dict.fromkeys(text[i : i + 3] for i in range(len(text) - 2))
    # Spread the chosen trigrams over the whole text: more selective than its start alone.
    picked = list(grams)
    if len(picked) > MAX_TRIGRAMS:
        step = len(picked) / MAX_TRIGRAMS
        picked = [picked[int(i * step)] for i in range(MAX_TRIGRAMS)]
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in picked)


def search_sql(
    query: str, limit: int, terms: Sequence[str], pending: Pending = BUILT
) -> tuple[str, list[object]]:
    """SQL and parameters for the first ``limit`` records by name (then id) whose name contains
    ``query`` (case-insensitive like the server's ``q``: SQLite's LIKE) or whose name or field
    words (not the password) start with each of its words; an empty query lists them all.

    The name substring goes through the trigram index (LIKE then re-checks the candidates, so
    the result is exactly LIKE's), the words through the unicode61 full-text index; only a
    one- or two-character substring scans, and then the names alone. The hits are cut at the
    limit by their names (read from the name index's own small table), so only the returned
    records are read in full, however many hits there are. ``pending.names``: the name index
    waits to be built after a first sync (``page_writer.NAMES_PENDING_KEY``); names are then
    read from the records, the same results, slower. ``pending.text``: the full-text index
    waits too (``page_writer.TEXT_PENDING_KEY``); the words are then looked for in the
    records' name and index text as LIKE substrings (:func:`words_scan`), slower and a little
    wider (a word inside another matches too; accents are not folded).
    """
    text = query.strip()
    if not text:
        return f"SELECT {_COLUMNS} FROM records {_ORDER} LIMIT ?", [limit]  # noqa: S608
    hits, params = _hits_sql(text, terms, pending)
    names = "records" if pending.names else "records_name_trigrams"
    # "cut" is the name of the limit-th hit by name: every hit up to it (ties included, so the
    # id order among equal names stays exact) is read in full, sorted and limited.
    sql = (
        f"WITH hit(r) AS MATERIALIZED ({hits}),"  # noqa: S608 - built from constants
        f" cut(name) AS (SELECT name FROM {names} WHERE rowid IN hit"
        "  ORDER BY name COLLATE NOCASE LIMIT 1 OFFSET ?)"
        f" SELECT {_COLUMNS} FROM records WHERE rowid IN ("
        f"  SELECT rowid FROM {names} WHERE rowid IN hit AND (NOT EXISTS"
        "  (SELECT 1 FROM cut) OR name COLLATE NOCASE <= (SELECT name FROM cut)))"
        f" {_ORDER} LIMIT ?"
    )
    return sql, [*params, max(0, limit - 1), limit]


def count_sql(
    query: str, terms: Sequence[str], pending: Pending = BUILT
) -> tuple[str, list[object]]:
    """SQL and parameters for how many records :func:`search_sql` finds without its limit
    (reads only the indexes: the hit row ids are counted, no record is read)."""
    text = query.strip()
    if not text:
        return "SELECT count(*) FROM records", []
    hits, params = _hits_sql(text, terms, pending)
    return f"SELECT count(*) FROM ({hits})", params  # noqa: S608 - built from constants


def _hits_sql(text: str, terms: Sequence[str], pending: Pending) -> tuple[str, list[object]]:
    """The row ids whose name contains ``text`` or whose words start with its words."""
    params: list[object] = []
    if pending.names:
        hits = "SELECT rowid FROM records WHERE name LIKE ? ESCAPE '\\'"
        params.append(like_pattern(text))
    elif len(text) < TRIGRAM_MIN_CHARS:
        hits = "SELECT rowid FROM records_name_trigrams WHERE name LIKE ? ESCAPE '\\'"
        params.append(like_pattern(text))
    else:
        hits = (
            "SELECT rowid FROM records_name_trigrams WHERE records_name_trigrams MATCH ?"
            " AND name LIKE ? ESCAPE '\\'"
        )
        params += [trigram_match(text), like_pattern(text)]
    if pending.text:
        if terms:
            scan, words = words_scan(terms)
            hits += " UNION " + scan
            params += words
        return hits, params
    match = fts_query(terms)
    if match and pending.words:
        # The entries of the records that wait for their words are stale or missing: those
        # records are matched in a temporary index of their current text (waiting_words).
        hits += (
            " UNION SELECT rowid FROM records_fts WHERE records_fts MATCH ?"
            " AND rowid NOT IN (SELECT rowid FROM records_fts_todo)"
            " UNION SELECT rowid FROM temp.waiting_words WHERE waiting_words MATCH ?"
        )
        params += [match, match]
    elif match:
        hits += " UNION SELECT rowid FROM records_fts WHERE records_fts MATCH ?"
        params.append(match)
    return hits, params


@contextmanager
def waiting_words(db: Any, pending: Pending) -> Iterator[None]:
    """While the records that wait for their full-text entries (``pending.words``: a small
    sync left them to the upkeep after its result, ``page_writer.words_wait``) are indexed in
    ``temp.waiting_words`` (in memory, like every temporary table of a copy, and without
    the password, like the index), from their current text, for :func:`search_sql`'s words:
    the same tokenizer and options as ``records_fts``, so the same matches. At most
    ``page_writer.WORDS_LATER_UP_TO`` records, about 1 ms per 100."""
    if not pending.words:
        yield
        return
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.waiting_words USING fts5(name, body,"
        f" content='', detail=none, tokenize='{FTS_TOKENIZER}')"
    )
    db.execute(
        "INSERT INTO temp.waiting_words(rowid, name, body)"  # noqa: S608 - constant text
        f" SELECT rowid, name, {RECORDS_FTS_BODY} FROM records"
        " WHERE rowid IN (SELECT rowid FROM records_fts_todo)"
    )
    try:
        yield
    finally:
        db.execute("INSERT INTO temp.waiting_words(waiting_words) VALUES ('delete-all')")


def term_word(term: str) -> str:
    """The word of a quoted FTS5 term from :func:`query_terms` (``"rout"*`` -> ``rout``)."""
    return term.removesuffix("*")[1:-1].replace('""', '"')


def words_scan(terms: Sequence[str]) -> tuple[str, list[object]]:
    """The row ids whose name or index text (what the full-text index would hold) contains
    every word of ``terms`` (LIKE, case-insensitive for ASCII): what stands in for the
    full-text index while it waits to be built, a scan of every record. It finds every record
    the index would, but for words whose accents the index folds, and some more (a word
    inside another: ``ail`` in ``mail``).

    The stored fields (JSON) are looked at first: a word the tokenizer made (letters and
    digits, nothing JSON escapes) that is in the index text is in them too, so this only
    drops records, cheaply (about 0.2 s per word at 100k records). The index text is made
    (about 0.5 s at 100k, once per record: ``LIMIT -1`` keeps SQLite from making it again
    for each word) only for the records left, and decides, so that a password's words
    never match."""
    patterns: list[object] = [like_pattern(term_word(term)) for term in terms]
    near = " AND ".join("(name LIKE ? ESCAPE '\\' OR fields LIKE ? ESCAPE '\\')" for _ in terms)
    exact = " AND ".join("t LIKE ? ESCAPE '\\'" for _ in terms)
    sql = (
        f"SELECT rowid FROM (SELECT rowid, records.name || ' ' || coalesce({RECORDS_FTS_BODY},"  # noqa: S608
        f" '') AS t FROM records WHERE {near} LIMIT -1) WHERE {exact}"
    )
    return sql, [p for p in patterns for _ in (1, 2)] + patterns
