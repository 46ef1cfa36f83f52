"""Logging in: online against the server, or offline through an add-on's copy.

An online session calls ``on_login`` and runs the timer thread (``on_timer``); closing it calls
``on_logout`` and revokes the token. When the server cannot be reached (not on a wrong password)
the host asks its add-ons for an offline session (``offline_login``), which reads, and writes
when the add-on's session can (contract 1.2: the add-on sends the changes later).

The user never waits in silence: a login that has no answer after a moment says where it
connects and that Ctrl-C works offline instead; it gives up after :data:`LOGIN_TIMEOUT`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hookspecs import Account, OfflineCredentials, OfflineLoginResult, OfflineSession, Session
from reference_host.client import (
    LOGIN_TIMEOUT,
    HostApiError,
    LoginAnswer,
    OnlineClient,
    ServerUnreachable,
)
from reference_host.host import Host
from reference_host.timer import HostClock, TimerThread

log = logging.getLogger("psr.host.session")

NOTICE_DELAY_S = 0.5
"""How long a login may take before the user is told what it waits for (well within the
second after which a silent program looks hung)."""
WENT_OFFLINE = "The server cannot be reached; you are now working offline from your copy."


def no_offline_addon_text(host: Host) -> str:
    """What to say when no switched-on add-on offers an offline login."""
    return (
        f"no add-on that offers an offline login is switched on; see "
        f"`{host.command_text('addons', 'list')}` (the Offline Add-on: "
        f"`{host.command_text('addons', 'enable offline')}`)"
    )


def no_offline_copy_text(host: Host) -> str:
    """What to say when the add-ons hold no copy for the user."""
    return (
        f"no offline copy for this user; create one with "
        f"`{host.command_text('offline', 'create')}` while online"
    )


@dataclass(frozen=True)
class LoginTarget:
    """Where and as whom to log in (the login screen without the password)."""

    server_url: str
    database: str
    username: str

    def account(self, client_id: str) -> Account:
        """The contract's :class:`Account` of this target on installation ``client_id``."""
        return Account(
            server_url=self.server_url.rstrip("/"),
            database=self.database,
            username=self.username,
            client_id=client_id,
        )


class OnlineSession:
    """A user logged in online: the hook :class:`Session`, the API client and the timer."""

    def __init__(
        self,
        host: Host,
        session: Session,
        client: OnlineClient,
        clock: HostClock,
        timer_seconds: float,
    ) -> None:
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

    @property
    def account(self) -> Account:
        """The account of this session, as the server named the user."""
        session = self.session
        return Account(
            server_url=session.server_url,
            database=session.database,
            username=session.username,
            client_id=session.client_id,
        )

    def close(self, *, revoke: bool = True) -> None:
        """Stop the timer, tell the add-ons, revoke the token (best effort; not when the
        server is known to be gone, which would only make the user wait), release."""
        self.timer.stop()
        if self._started:
            self.host.hooks.call("on_logout", session=self.session)
        try:
            if revoke:
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


class _LoginAttempt:
    """One ``POST /session`` on a thread of its own, so that the waiting user can be told what
    is waited for and can give up (Ctrl-C is honoured between short waits on every platform,
    which a blocking socket read on the main thread does not do on Windows).

    A given-up attempt cleans up after itself: it revokes a token that arrives too late and
    closes the client, which the caller must not touch any more.
    """

    def __init__(
        self, client: OnlineClient, target: LoginTarget, password: str, timeout: tuple[float, float]
    ) -> None:
        self._client = client
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._answer: LoginAnswer | None = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(
            target=self._run, args=(target, password, timeout), name="psr-host-login", daemon=True
        )
        self._thread.start()

    def _run(self, target: LoginTarget, password: str, timeout: tuple[float, float]) -> None:
        try:
            answer = self._client.login(target.database, target.username, password, timeout=timeout)
        except BaseException as exc:  # handed to the waiting thread
            with self._lock:
                self._error = exc
                abandoned = self._abandoned
        else:
            with self._lock:
                self._answer = answer
                abandoned = self._abandoned
        self._done.set()
        if abandoned:
            self._clean_up()

    def _clean_up(self) -> None:
        try:
            if self._answer is not None:
                self._client.logout()
        except HostApiError as exc:
            log.info("revoking a login the user gave up on failed: %s", exc)
        finally:
            self._client.close()

    def wait(self, notice: Callable[[str], None] | None, hint: str) -> LoginAnswer:
        """The answer (or the attempt's error); after :data:`NOTICE_DELAY_S` without one,
        ``notice`` says where it connects. ``KeyboardInterrupt`` gives the attempt up."""
        try:
            if not self._done.wait(NOTICE_DELAY_S) and notice is not None:
                notice(f"Connecting to {self._client.server_url} … ({hint})")
            while not self._done.wait(0.1):
                pass
        except KeyboardInterrupt:
            with self._lock:
                self._abandoned = True
                finished = self._done.is_set()
            if finished:  # it ended while the user pressed Ctrl-C: nobody else cleans up
                self._clean_up()
            raise
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer


def log_in(
    host: Host,
    target: LoginTarget,
    password: str,
    clock: HostClock,
    timer_seconds: float,
    *,
    offline_fallback: bool = True,
    notice: Callable[[str], None] | None = None,
    timeout: tuple[float, float] = LOGIN_TIMEOUT,
) -> LoginOutcome:
    """Log in online; fall back to an offline session when the server cannot be reached, or
    when the user stops waiting for it with Ctrl-C (and ``offline_fallback``; without it
    Ctrl-C is raised). ``notice`` is told when the server is slow to answer.

    The caller shows the message, then starts the online session (:meth:`OnlineSession.start`:
    ``on_login``, timer), so that the add-ons' reactions to the login follow the login
    message."""
    client_id = host.config.client_id
    client = OnlineClient(target.server_url, client_id)
    hint = "press Ctrl-C to work offline" if offline_fallback else "press Ctrl-C to stop"
    try:
        answer = _LoginAttempt(client, target, password, timeout).wait(notice, hint)
    except KeyboardInterrupt:
        if not offline_fallback:
            raise
        log.info("the user stopped waiting for the online login")
        return offline_login(
            host, target, password, reason=f"stopped connecting to {client.server_url}"
        )
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
    session = Session(
        server_url=client.server_url,
        database=target.database,
        user_id=answer.user_id,
        username=answer.username,
        client_id=client_id,
        token=answer.token,
        password=password,
    )
    online = OnlineSession(host, session, client, clock, timer_seconds)
    return LoginOutcome(
        online=online, message=f"logged in online as {answer.username} to {target.database}"
    )


def offline_login(host: Host, target: LoginTarget, password: str, reason: str = "") -> LoginOutcome:
    """Ask the add-ons (first answer wins) for an offline session."""
    credentials = OfflineCredentials(
        server_url=target.server_url.rstrip("/"),
        database=target.database,
        username=target.username,
        client_id=host.config.client_id,
        password=password,
    )
    answered = host.hooks.call_first("offline_login", credentials=credentials)
    prefix = f"{reason}\n" if reason else ""
    if answered is None and not host.enabled_offering("offline_login"):
        return LoginOutcome(message=prefix + no_offline_addon_text(host))
    if answered is None:
        return LoginOutcome(message=prefix + no_offline_copy_text(host))
    addon_id, result = answered
    if not isinstance(result, OfflineLoginResult):
        log.error("add-on %r answered offline_login with a %s", addon_id, type(result).__name__)
        return LoginOutcome(message=prefix + no_offline_copy_text(host))
    if result.session is None:
        return LoginOutcome(message=prefix + result.message)
    return LoginOutcome(
        offline=result.session,
        message=prefix + (result.message or f"logged in offline as {target.username} (read-only)"),
    )


def continue_offline(host: Host, target: LoginTarget, online: OnlineSession) -> LoginOutcome:
    """The server went away during ``online``: open an offline session with the credentials
    of that login (no new login). On success the online session is closed (without revoking
    the token at a server that is gone) and the outcome's message says that the user now
    works offline; otherwise ``online`` stays as it is and the message says why not."""
    password = online.session.password
    outcome = offline_login(host, target, password)
    if outcome.offline is None:
        return outcome
    online.close(revoke=False)
    return LoginOutcome(
        offline=outcome.offline, message="\n".join(m for m in (WENT_OFFLINE, outcome.message) if m)
    )
