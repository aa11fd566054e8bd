"""The Odoo 14 wrappers (static/src/js/*.js, loaded unchanged from the server) in real
Chromium, on a page with a minimal Odoo runtime (odoo_shim.js): the `bus_service`
API and the legacy `bus.bus` API both deliver what the server sends.
"""

from __future__ import annotations

from pathlib import Path

from browser_helpers import now_ms, wait_until

SHIM = (Path(__file__).resolve().parent / "odoo_shim.js").read_text()
WRAPPERS = [
    "core/longpoll.js",
    "core/crosstab.js",
    "longpolling_bus.js",
    "crosstab_bus.js",
    "services/bus_service.js",
    "bus.js",
]
BOOT = """
const env = odooShim.deployServices();
const service = env.services.bus_service;
const legacy = odoo.require('bus.bus').bus;
const owner = {};
window.got = {service: [], legacy: [], roles: []};
service.onNotification(owner, (pairs) => got.service.push(...pairs));
service.on('become_master', owner, () => got.roles.push('become_master'));
legacy.on('notification', owner, (pairs) => got.legacy.push(...pairs));
service.addChannel('odoo');
service.startPolling();
legacy.add_channel('legacy');
legacy.start_polling();
window.busService = service;
"""
PAGE = "/odoo-wrappers-test"


def page_html() -> str:
    scripts = "\n".join(f'<script src="/bus/static/src/js/{path}"></script>' for path in WRAPPERS)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bus wrappers</title></head><body>"
            f"<script>{SHIM}</script>\n{scripts}\n<script>{BOOT}</script></body></html>")


def open_odoo_page(context, srv):
    """A tab of `srv`'s origin whose HTML is the test page (its scripts come from the server)."""
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route(f"{srv.url}{PAGE}", lambda route: route.fulfill(content_type="text/html", body=page_html()))
    page.goto(srv.url + PAGE)
    page.wait_for_function("window.busService && busService._isRegistered", timeout=10000)
    page.errors = errors
    return page


def received(page, api):
    return page.evaluate(f"got.{api}")


def test_bus_service_and_legacy_bus_bus_both_deliver(server, context, polls):
    srv = server()
    page = open_odoo_page(context, srv)
    wait_until([page], lambda: polls.in_flight and polls.sent[-1]["params"]["channels"] == ["odoo", "legacy"])

    srv.send("odoo", {"text": "to the service", "sent_at": now_ms()})
    srv.send("legacy", "to the legacy bus")
    page.wait_for_function("got.service.length >= 2 && got.legacy.length >= 2", timeout=3000)

    expected = [["odoo", {"text": "to the service", "sent_at": received(page, "service")[0][1]["sent_at"]}],
                ["legacy", "to the legacy bus"]]
    assert received(page, "service") == expected
    assert received(page, "legacy") == expected
    assert page.evaluate("busService.isMasterTab()") is True
    assert page.evaluate("got.roles") == ["become_master"]
    assert page.evaluate("busService.getTabId()").startswith("bus")
    assert not page.errors


def test_wrappers_share_one_poll_between_tabs_through_local_storage(server, context, polls):
    srv = server()
    first = open_odoo_page(context, srv)
    second = open_odoo_page(context, srv)
    wait_until([first], lambda: first.evaluate("busService.isMasterTab()") != second.evaluate(
        "busService.isMasterTab()"))
    first.wait_for_timeout(300)
    polls.reset_peak()

    srv.send("legacy", "one")
    srv.send("odoo", "two")
    for page in (first, second):
        page.wait_for_function("got.service.length >= 2 && got.legacy.length >= 2", timeout=3000)

    for page in (first, second):
        assert received(page, "service") == [["legacy", "one"], ["odoo", "two"]]
        assert received(page, "legacy") == [["legacy", "one"], ["odoo", "two"]]
        assert not page.errors
    assert polls.most_in_flight == 1
    assert {poll["page"] for poll in polls.sent} == {first}


def test_wrappers_hand_over_when_the_master_tab_closes(server, context, polls):
    srv = server()
    first = open_odoo_page(context, srv)
    second = open_odoo_page(context, srv)
    wait_until([first], lambda: first.evaluate("busService.isMasterTab()"))
    assert second.evaluate("busService.isMasterTab()") is False
    assert first.evaluate("busService._core.locks !== null"), "a real localStorage should elect with Web Locks"

    first.close()
    srv.send("odoo", "after the handover")

    second.wait_for_function("got.service.length >= 1", timeout=5000)
    assert received(second, "service") == [["odoo", "after the handover"]]
    assert second.evaluate("busService.isMasterTab()") is True
    assert second.evaluate("got.roles") == ["become_master"]


def test_stop_polling_aborts_the_poll_and_forgets_the_channels(server, context, polls):
    srv = server()
    page = open_odoo_page(context, srv)
    wait_until([page], lambda: len(polls.in_flight) == 1)

    page.evaluate("busService.stopPolling()")

    wait_until([page], lambda: not polls.in_flight, timeout=2)
    assert page.evaluate("busService._channels") == []
    assert page.evaluate("busService._isActive") is False
