"""The core poll loop (longpoll.js, loaded alone) in real Chromium: polls answered
"bus.Bus unavailable" (a proxy sending /longpolling/ to an HTTP worker) back off,
doubling up to a cap, in both error shapes the loop receives; other errors keep the
usual delay, and a successful poll resets the back-off."""

from __future__ import annotations

from pathlib import Path

LONGPOLL = (Path(__file__).resolve().parents[2] / "static/src/js/core/longpoll.js").read_text()
SETTINGS = {"ERROR_RETRY_DELAY": 40, "ERROR_RETRY_JITTER": 0, "MISROUTED_RETRY_MAX": 160}
SCRIPT = """async ([script, settings]) => {
    const message = 'bus.Bus unavailable: this poll reached an HTTP worker';
    const outcomes = {
        // imbus.jsonRpc's rejection, and Odoo's ajax layer's ({message: JSON-RPC error})
        rpc: () => Promise.reject(new imbus.RpcError(message, {code: 200, data: {message: message}})),
        odoo: () => Promise.reject({message: {code: 200, message: 'Odoo Server Error', data: {message: message}}}),
        other: () => Promise.reject(new imbus.RpcError('HTTP 502')),
        ok: () => Promise.resolve([]),
    };
    const calls = [];
    const errors = [];
    return await new Promise((resolve) => {
        const poller = new imbus.Poller({settings: settings, request: () => {
            calls.push(performance.now());
            if (calls.length > script.length) {
                poller.stopPolling();
                resolve({calls: calls, errors: errors});
                return new Promise(() => {});
            }
            return outcomes[script[calls.length - 1]]();
        }});
        poller.on('poll_error', (error, delay) => errors.push(delay));
        poller.addChannel('x');
    });
}"""


def test_misrouted_polls_back_off_doubling_to_a_cap_and_success_resets(context):
    page = context.new_page()
    page.set_content(f"<script>{LONGPOLL}</script>")
    script = ["rpc", "rpc", "odoo", "rpc", "other", "ok", "odoo", "rpc"]
    run = page.evaluate(SCRIPT, [script, SETTINGS])
    # ok answers without an error event, so 7 delays for the 7 failures
    assert run["errors"] == [40, 80, 160, 160, 40, 40, 80]
    gaps = [later - earlier for earlier, later in zip(run["calls"], run["calls"][1:])]
    waited = [gap for gap, outcome in zip(gaps, script) if outcome != "ok"]
    assert all(gap >= delay - 2 for gap, delay in zip(waited, run["errors"])), (waited, run["errors"])
    assert gaps[script.index("ok")] < 40, "after an answer the next poll goes at once"
