"""The interactive session's command parsing, without a server: bad input never ends it."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from reference_host.commands import UsageError
from reference_host.host import Host
from reference_host.session import LoginTarget
from reference_host.shell import Shell, is_password_like, parse_assignments
from reference_host.timer import HostClock
from tests.support.host import AddonSite

HostFactory = Callable[..., tuple[Host, io.StringIO]]


def _shell(host: Host, script: str) -> Shell:
    return Shell(
        host,
        LoginTarget("http://127.0.0.1:1", "demo", "alice"),
        HostClock(),
        3600,
        io.StringIO(script),
        interactive=False,
    )


def test_bad_input_is_answered_and_the_session_goes_on(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    host, out = make_host("probe")
    host.start()
    script = (
        "bogus\nsay it's 'unbalanced\nshow\n'unbalanced\ntick abc\nlist\nedit x nokey\n"
        "new\nprobe ping\nprobe explode\nsettings set probe level 0\nsay still here\n"
    )
    assert _shell(host, script).run() == 0
    text = out.getvalue()
    assert "invalid choice: 'bogus'" in text
    assert "the following arguments are required: NAME" in text
    assert "error: No closing quotation" in text
    assert "invalid float value: 'abc'" in text
    assert "not logged in; use `login`" in text
    assert "pong None" in text
    assert "error: probe explode failed: handler exploded" in text
    assert "level: Must be greater than or equal to 1" in text
    assert text.rstrip().endswith("still here")


def test_addon_commands_and_settings_work_in_the_session(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    probe = addon_site.install("probe")
    host, out = make_host("probe")
    host.start()
    _shell(host, "settings set probe label demo\naddons list\nhelp\n").run()
    lines = out.getvalue().splitlines()
    assert 'probe.label = "demo"' in lines
    assert "probe\tProbe probe\t0.3.1\tenabled" in lines
    assert "  probe ping: answer pong" in lines
    hook, info = probe.plugin_module().CALLS[-1]
    assert (hook, info["settings"]["label"]) == ("on_settings_changed", "demo")


def test_assignments_need_a_key_and_an_equals_sign() -> None:
    assert parse_assignments(["a=1", "b=", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    with pytest.raises(UsageError, match="key=value"):
        parse_assignments(["=1"])
    with pytest.raises(UsageError, match="value 2 has no key") as caught:
        parse_assignments(["a=1", "s3cret"])
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("password", True),
        ("Password", True),
        ("pin", True),
        ("api_token", True),
        ("client_secret", True),
        ("username", False),
        ("url", False),
        ("notes", False),
    ],
)
def test_password_like_fields_are_recognised(name: str, masked: bool) -> None:
    assert is_password_like(name) is masked


def test_tick_without_an_online_session_explains(make_host: HostFactory) -> None:
    host, out = make_host()
    _shell(host, "tick 5\nlogout\npasswd\n").run()
    assert out.getvalue().splitlines() == [
        "the timer runs only while logged in online",
        "not logged in",
        NOT_LOGGED,
    ]


NOT_LOGGED = "not logged in; use `login`"


def test_a_failing_command_is_not_announced_a_second_time(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    host, out = make_host("probe")
    host.start()
    _shell(host, "probe ping word --code 3\n").run()
    assert out.getvalue().splitlines() == ["pong word"]


def test_commands_get_the_account_without_a_login_and_the_command_text_of_the_shell(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    host, out = make_host("probe")
    host.start()
    _shell(host, "probe account\nprobe hint\n").run()
    assert out.getvalue().splitlines() == [
        f"account http://127.0.0.1:1 demo alice {host.config.client_id}",
        "run probe ping",
    ]


def test_a_switched_off_addons_group_is_explained_in_the_shell(
    addon_site: AddonSite, make_host: HostFactory
) -> None:
    addon_site.install("probe")
    host, out = make_host("probe")
    host.start()
    _shell(host, "addons disable probe\nprobe ping\n").run()
    assert out.getvalue().splitlines()[-1] == (
        "the command group 'probe' belongs to the add-on 'probe', which is switched off; "
        "switch it on with `addons enable probe`"
    )
