"""The host's online API client (protocol v1): login, logout, records, password change.

Errors come out as :class:`HostApiError` children whose messages a user can act on and never
carry the password, the token or record contents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds: the host never hangs
# A login is what the user waits for with nothing else to do; a server that does not answer in
# this time is as good as gone, and the offline copy is the better offer.
LOGIN_TIMEOUT = (3.0, 10.0)
PAGE_LIMIT = 500  # the server's largest page


class HostApiError(Exception):
    """An online request failed; the message is for the user."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ServerUnreachable(HostApiError):
    """No answer from the server (connection refused, DNS, timeout)."""


class BadCredentials(HostApiError):
    """401 on login or password change: the user name or password is wrong."""


class SessionExpired(HostApiError):
    """401 ``bad_token``: the session is no longer valid; log in again."""


@dataclass(frozen=True)
class LoginAnswer:
    """What ``POST /session`` returned."""

    user_id: str
    username: str
    server_time: float
    token: str = field(repr=False)


class NotAServer(HostApiError):
    """The address answers, but not as a Password Safe server (a wrong URL)."""


@dataclass(frozen=True)
class OnlineRecord:
    """A record as the server sent it. ``fields`` is hidden from ``repr``."""

    record_id: str
    rev: int
    name: str
    updated_at: float
    fields: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class RecordPage:
    """One page of a record list, and how many records match in all."""

    records: list[OnlineRecord]
    total: int


def _records_path(database: str, record_id: str | None = None) -> str:
    """The records path; ids typed by the user are quoted so they never change the path."""
    path = f"/databases/{quote(database, safe='')}/records"
    return path if record_id is None else f"{path}/{quote(record_id, safe='')}"


def _record(data: Any) -> OnlineRecord:
    try:
        return OnlineRecord(
            str(data["id"]),
            int(data["rev"]),
            str(data["name"]),
            float(data.get("updated_at", 0.0)),
            {str(k): str(v) for k, v in dict(data["fields"]).items()},
        )
    except (KeyError, TypeError, ValueError):
        raise HostApiError(
            "the server sent a malformed record; try again or contact your administrator"
        ) from None


class OnlineClient:
    """Talks to one server for one installation (``client_id``)."""

    def __init__(
        self, server_url: str, client_id: str, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self._client_id = client_id
        self._timeout = timeout
        self._http = requests.Session()
        self._token: str | None = None

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> OnlineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: tuple[float, float] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {"X-Client-Id": self._client_id, "Accept": "application/json"}
        headers.update(extra_headers or {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            return self._http.request(
                method,
                self.server_url + API_PREFIX + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout or self._timeout,
            )
        except requests.ReadTimeout:
            waited = (timeout or self._timeout)[1]
            raise ServerUnreachable(
                f"the server {self.server_url} did not answer within {waited:g} s; try again later"
            ) from None
        except (requests.ConnectionError, requests.Timeout):
            raise ServerUnreachable(
                f"the server {self.server_url} cannot be reached; check "
                "your network or try again later"
            ) from None
        except requests.RequestException as exc:
            raise ServerUnreachable(
                f"the request to {self.server_url} failed ({type(exc).__name__})"
            ) from None

    def _check(self, response: requests.Response, expected: int) -> Any:
        if response.status_code == expected:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise self._not_a_server(response.status_code) from None
        code, detail = "", ""
        try:
            problem = response.json()
            code, detail = str(problem.get("code", "")), str(problem.get("detail", ""))
        except (ValueError, AttributeError):
            pass
        status = response.status_code
        if status in (404, 405, 501) and code in ("", "not_found", "method_not_allowed"):
            # Not one of the API's own refusals (unknown_record, unknown_database...): the
            # address is not the API's, as with a wrong URL or a path that is not the server's.
            raise self._not_a_server(status)
        if status == 401 and code == "bad_credentials":
            raise BadCredentials("wrong user name or password", status=status, code=code)
        if status == 401:
            raise SessionExpired("your session has expired; log in again", status=status, code=code)
        if status >= 500:
            raise HostApiError(
                f"the server had a problem (HTTP {status}); try again later",
                status=status,
                code=code,
            )
        shown = f"HTTP {status} {code}".rstrip()
        raise HostApiError(
            detail or f"the server refused the request ({shown})", status=status, code=code
        )

    def _not_a_server(self, status: int) -> NotAServer:
        return NotAServer(
            f"{self.server_url} does not look like a Password Safe server (it "
            f"answered HTTP {status} where the API should be); check the server "
            "URL",
            status=status,
            code="not_a_server",
        )

    def login(
        self,
        database: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float] = LOGIN_TIMEOUT,
    ) -> LoginAnswer:
        """``POST /session``; keeps the token for the following calls."""
        body = {
            "database": database,
            "username": username,
            "password": password,
            "client_id": self._client_id,
        }
        data = self._check(self._request("POST", "/session", json=body, timeout=timeout), 200)
        if not isinstance(data, dict):
            raise self._not_a_server(200)
        try:
            answer = LoginAnswer(
                str(data["user_id"]),
                str(data.get("username", username)),
                float(data["server_time"]),
                token=str(data["token"]),
            )
        except (KeyError, TypeError, ValueError):
            raise HostApiError("the server sent a malformed login answer") from None
        self._token = answer.token
        return answer

    def logout(self) -> None:
        """``DELETE /session``; the token is forgotten even when the server is gone."""
        if not self._token:
            return
        try:
            self._check(self._request("DELETE", "/session"), 204)
        finally:
            self._token = None

    def list_records(self, database: str, query: str = "") -> list[OnlineRecord]:
        """Every record the user may read (all pages), optionally filtered by name."""
        records: list[OnlineRecord] = []
        while True:
            page = self.list_page(database, query, offset=len(records))
            records.extend(page.records)
            if not page.records or len(records) >= page.total:
                return records

    def list_page(
        self, database: str, query: str = "", *, limit: int = PAGE_LIMIT, offset: int = 0
    ) -> RecordPage:
        """One page of the records the user may read, by name, whose name contains ``query``
        (case-insensitive); with the number of all such records."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if query:
            params["q"] = query
        data = self._check(self._request("GET", _records_path(database), params=params), 200)
        try:
            return RecordPage([_record(item) for item in data["records"]], int(data["total"]))
        except (KeyError, TypeError, ValueError):
            raise HostApiError("the server sent a malformed record list") from None

    def get_record(self, database: str, record_id: str) -> OnlineRecord:
        """One record; :class:`HostApiError` with code ``unknown_record`` when not readable."""
        return _record(self._check(self._request("GET", _records_path(database, record_id)), 200))

    def create_record(self, database: str, name: str, fields: Mapping[str, str]) -> OnlineRecord:
        """Create a record (rev 1)."""
        return _record(
            self._check(
                self._request(
                    "POST", _records_path(database), json={"name": name, "fields": dict(fields)}
                ),
                201,
            )
        )

    def update_record(
        self, database: str, record_id: str, rev: int, name: str, fields: Mapping[str, str]
    ) -> OnlineRecord:
        """Save a new revision; code ``stale_revision`` when ``rev`` is not the current one."""
        return _record(
            self._check(
                self._request(
                    "PUT",
                    _records_path(database, record_id),
                    json={"rev": rev, "name": name, "fields": dict(fields)},
                ),
                200,
            )
        )

    def delete_record(self, database: str, record_id: str, rev: int) -> None:
        """Delete a record at revision ``rev`` (``If-Match``); code ``revision_moved`` when
        someone changed it since."""
        self._check(
            self._request(
                "DELETE",
                _records_path(database, record_id),
                extra_headers={"If-Match": f'"{rev}"'},
            ),
            204,
        )

    def change_password(self, old_password: str, new_password: str) -> None:
        """``POST /session/password``."""
        self._check(
            self._request(
                "POST",
                "/session/password",
                json={"old_password": old_password, "new_password": new_password},
            ),
            204,
        )
