"""The reference server's errors; messages never contain passwords, tokens or record contents.

::

    ApiError           a refused request: an answer in ``application/problem+json``
    PreconditionFailed a conditional write met another revision (412, with the record now)
    DataFolderError    the data folder is missing, not one of ours, or unusable
    CommandError       a ``psr-server`` command that cannot be carried out as given

Domain code (``records``, ``feed``, ``accounts``) raises :class:`ApiError`; the Flask app turns
it into a problem document, and :class:`~reference_server.admin.Admin` lets it reach the caller.
``datadir`` raises :class:`DataFolderError` before any request is served, and the command line
raises :class:`CommandError` (no terminal for a prompt, a delete without ``--yes``);
``psr-server`` prints each of them as one line on stderr.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refused request: HTTP ``status``, machine ``code``, short ``title``, helpful ``detail``."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail

    def to_problem(self) -> dict[str, Any]:
        """The problem+json body for this error."""
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }


def bad_request(detail: str, code: str = "bad_request") -> ApiError:
    """A malformed request (400)."""
    return ApiError(400, code, "Bad request", detail)


def bad_token(detail: str = "The token is missing, invalid or expired; log in again.") -> ApiError:
    """A missing, unknown, revoked or expired bearer token (401)."""
    return ApiError(401, "bad_token", "Not authenticated", detail)


def unknown_database(name: str) -> ApiError:
    """A database name the server does not know (404)."""
    return ApiError(
        404,
        "unknown_database",
        "Unknown database",
        f"There is no database named {name!r}; check the name.",
    )


def unknown_user(name: str) -> ApiError:
    """A user name the server does not know (404; admin only)."""
    return ApiError(404, "unknown_user", "Unknown user", f"There is no user named {name!r}.")


def client_mismatch(detail: str) -> ApiError:
    """A report about another client installation than the token's (403; never a reason for
    a client to delete its copy)."""
    return ApiError(403, "client_mismatch", "Another client installation", detail)


def not_server_manager() -> ApiError:
    """A request to a server manager endpoint without a manager token (403)."""
    return ApiError(
        403,
        "not_server_manager",
        "Server manager only",
        "This endpoint needs a server manager token (psr-server admin api-token create), "
        "not a user's token.",
    )


def unknown_record() -> ApiError:
    """A record that does not exist or that the caller may not read (404)."""
    return ApiError(
        404,
        "unknown_record",
        "Unknown record",
        "No such record in this database, or you have no right to read it.",
    )


class PreconditionFailed(ApiError):
    """A conditional write whose condition does not hold (412): the body carries the record
    as it is now (``current``), as the caller may read it, so the client can merge."""

    def __init__(self, code: str, detail: str, current: dict[str, Any]) -> None:
        super().__init__(412, code, "Precondition failed", detail)
        self.current = current

    def to_problem(self) -> dict[str, Any]:
        """The problem+json body, with the current record."""
        return {**super().to_problem(), "current": self.current}


class DataFolderError(Exception):
    """The data folder cannot be used as it is; ``str(error)`` says why and what to do."""


class CommandError(Exception):
    """A command that cannot be carried out as given; ``str(error)`` says what to do instead."""
