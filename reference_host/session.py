"""Logging in: online against the server, or offline through an add-on's copy.

An online session calls ``on_login`` and runs the timer thread (``on_timer``); closing it calls
``on_logout`` and revokes the token. When the server cannot be reached (not on a wrong password)
the host asks its add-ons for an offline session (``offline_login``), which is read-only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from hookspecs import OfflineCredentials, OfflineLoginResult, OfflineSession, Session
from reference_host.client import HostApiError, OnlineClient, ServerUnreachable
from reference_host.host import Host
from reference_host.timer import HostClock, TimerThread

log = logging.getLogger("psr.host.session")

NO_OFFLINE_ADDON = ("no add-on that offers an offline login is switched on; see `psr-client "
                    "addons list` (the Offline Add-on: `psr-client addons enable offline`)")
NO_OFFLINE_COPY = ("no offline copy for this user; create one with `psr-client offline create` "
                   "while online")


@dataclass(frozen=True)
class LoginTarget:
    """Where and as whom to log in (the login screen without the password)."""

    server_url: str
    database: str
    username: str


class OnlineSession:
    """A user logged in online: the hook :class:`Session`, the API client and the timer."""

    def __init__(self, host: Host, session: Session, client: OnlineClient, clock: HostClock,
                 timer_seconds: float) -> None:
        self.host = host
        self.client = client
        self.clock = clock
        self._session = session
        self._lock = threading.Lock()
        self._started = False
        self.timer = TimerThread(timer_seconds, clock, self._tick)

    @property
    def session(self) -> Session:
        """The current hook session (replaced after a password change)."""
        with self._lock:
            return self._session

    def replace_session(self, session: Session) -> None:
        """Use ``session`` from now on (for example with the new password)."""
        with self._lock:
            self._session = session

    def start(self) -> None:
        """Tell the add-ons about the login and start the timer."""
        self._started = True
        self.host.hooks.call("on_login", session=self.session)
        self.timer.start()

    def _tick(self, now: float) -> None:
        self.host.hooks.call("on_timer", session=self.session, now=now)

    def close(self) -> None:
        """Stop the timer, tell the add-ons, revoke the token (best effort), release."""
        self.timer.stop()
        if self._started:
            self.host.hooks.call("on_logout", session=self.session)
        try:
            self.client.logout()
        except HostApiError as exc:
            log.info("logout at the server failed: %s", exc)
        finally:
            self.client.close()


@dataclass(frozen=True)
class LoginOutcome:
    """The result of a login attempt: an online session, an offline one, or neither and a
    message for the user."""

    online: OnlineSession | None = None
    offline: OfflineSession | None = None
    message: str = ""


def log_in(host: Host, target: LoginTarget, password: str, clock: HostClock,
           timer_seconds: float, *, offline_fallback: bool = True) -> LoginOutcome:
    """Log in online; fall back to an offline session when the server cannot be reached (and
    ``offline_fallback``). The caller shows the message, then starts the online session
    (:meth:`OnlineSession.start`: ``on_login``, timer), so that the add-ons' reactions to the
    login follow the login message."""
    client_id = host.config.client_id
    client = OnlineClient(target.server_url, client_id)
    try:
        answer = client.login(target.database, target.username, password)
    except ServerUnreachable as exc:
        client.close()
        log.info("online login failed: %s", exc)
        if not offline_fallback:
            return LoginOutcome(message=str(exc))
        return offline_login(host, target, password, reason=str(exc))
    except HostApiError as exc:
        client.close()
        if exc.code == "unknown_database":
            return LoginOutcome(message=f"the server has no database {target.database!r}")
        return LoginOutcome(message=str(exc))
    session = Session(server_url=client.server_url, database=target.database,
                      user_id=answer.user_id, username=answer.username, client_id=client_id,
                      token=answer.token, password=password)
    online = OnlineSession(host, session, client, clock, timer_seconds)
    return LoginOutcome(online=online, message=f"logged in online as {answer.username} "
                                               f"to {target.database}")


def offline_login(host: Host, target: LoginTarget, password: str,
                  reason: str = "") -> LoginOutcome:
    """Ask the add-ons (first answer wins) for an offline session."""
    credentials = OfflineCredentials(server_url=target.server_url.rstrip("/"),
                                     database=target.database, username=target.username,
                                     client_id=host.config.client_id, password=password)
    answered = host.hooks.call_first("offline_login", credentials=credentials)
    prefix = f"{reason}\n" if reason else ""
    if answered is None and not host.enabled_offering("offline_login"):
        return LoginOutcome(message=prefix + NO_OFFLINE_ADDON)
    if answered is None:
        return LoginOutcome(message=prefix + NO_OFFLINE_COPY)
    addon_id, result = answered
    if not isinstance(result, OfflineLoginResult):
        log.error("add-on %r answered offline_login with a %s", addon_id, type(result).__name__)
        return LoginOutcome(message=prefix + NO_OFFLINE_COPY)
    if result.session is None:
        return LoginOutcome(message=prefix + result.message)
    return LoginOutcome(offline=result.session,
                        message=prefix + (result.message or
                                          f"logged in offline as {target.username} (read-only)"))
