/*
 * The standalone demo page: a cross-tab bus (imbus.connect) on the default
 * channel, a form to join/leave channels and to send, and the live feed.
 *
 * Query string: ?channel=NAME (default channel), ?storage=1 (localStorage
 * only: no Web Locks, no BroadcastChannel).
 * Messages sent from here are {text, sent_at (ms since epoch), from (tab id)};
 * any message with a numeric `sent_at` (ms, or seconds) shows its latency.
 * `window.demo` exposes the bus and what was received, for tests.
 */
(function () {
    'use strict';

    const query = new URLSearchParams(window.location.search);
    const DEFAULT_CHANNEL = query.get('channel') || 'demo';
    const MAX_ROWS = 200;
    const settings = query.get('storage') ? {USE_LOCKS: false, USE_BROADCAST: false} : {};

    const bus = imbus.connect({settings: settings});
    const send = imbus.jsonRpc('/longpolling/send', {timeout: 10000});
    const received = [];
    const latencies = [];
    const palette = new Map();
    const openedAt = Date.now();

    window.demo = {bus: bus, received: received};

    const $ = (id) => document.getElementById(id);

    // ---------------------------------------------------------------- helpers

    function shortTab(tabId) {
        if (!tabId) {
            return '–';
        }
        return 'Tab ' + String(tabId).slice(-5).toUpperCase();
    }

    function sentAt(message) {
        if (!message || typeof message !== 'object' || typeof message.sent_at !== 'number') {
            return null;
        }
        return message.sent_at < 1e11 ? message.sent_at * 1000 : message.sent_at;
    }

    function describe(message) {
        if (message && typeof message === 'object' && typeof message.text === 'string') {
            return message.text;
        }
        return typeof message === 'string' ? message : JSON.stringify(message);
    }

    function channelColor(channel) {
        const name = typeof channel === 'string' ? channel : JSON.stringify(channel);
        if (!palette.has(name)) {
            let hash = 0;
            for (const char of name) {
                hash = (hash * 31 + char.charCodeAt(0)) % 360;
            }
            palette.set(name, 'hsl(' + hash + ' 55% 42%)');
        }
        return palette.get(name);
    }

    function median(values) {
        const sorted = values.slice().sort((a, b) => a - b);
        return sorted[Math.floor(sorted.length / 2)];
    }

    function formatLatency(ms) {
        return ms < 10 ? ms.toFixed(1) + ' ms' : Math.round(ms) + ' ms';
    }

    function element(tag, className, text) {
        const node = document.createElement(tag);
        if (className) {
            node.className = className;
        }
        if (text !== undefined) {
            node.textContent = text;
        }
        return node;
    }

    // ---------------------------------------------------------------- feed

    function onNotification(pairs, items) {
        const now = Date.now();
        (items || pairs.map((pair) => ({channel: pair[0], message: pair[1]}))).forEach((item) => {
            const start = sentAt(item.message);
            const entry = {
                id: item.id,
                channel: item.channel,
                message: item.message,
                at: now,
                // A message sent before this page opened is history, not a latency.
                replayed: start !== null && start < openedAt,
                latency: start === null || start < openedAt ? null : Math.max(0, now - start),
            };
            received.push(entry);
            if (entry.latency !== null) {
                latencies.push(entry.latency);
                latencies.splice(0, Math.max(0, latencies.length - 50));
            }
            addRow(entry);
        });
        refreshStats();
    }

    function addRow(entry) {
        const row = element('li', 'feed-row fresh');
        const tag = element('span', 'channel-tag', typeof entry.channel === 'string'
            ? entry.channel : JSON.stringify(entry.channel));
        tag.style.setProperty('--tag', channelColor(entry.channel));
        const body = element('div', 'feed-body');
        body.append(element('p', 'feed-text', describe(entry.message)));
        const meta = element('p', 'feed-meta');
        const from = entry.message && entry.message.from;
        meta.textContent = [
            entry.id !== undefined ? 'id ' + entry.id : null,
            from ? 'from ' + shortTab(from) : 'from the server',
            entry.replayed ? 'sent before this page opened' : new Date(entry.at).toLocaleTimeString(),
        ].filter(Boolean).join(' · ');
        body.append(meta);
        const latency = element('span', 'latency', entry.latency === null ? '' : formatLatency(entry.latency));
        if (entry.latency !== null) {
            latency.classList.add(entry.latency < 100 ? 'fast' : entry.latency < 1000 ? 'ok' : 'slow');
            latency.title = 'From send to display';
        }
        row.append(tag, body, latency);
        const feed = $('feed');
        feed.prepend(row);
        while (feed.children.length > MAX_ROWS) {
            feed.lastElementChild.remove();
        }
        $('feed-empty').hidden = true;
        setTimeout(() => row.classList.remove('fresh'), 1200);
    }

    // ---------------------------------------------------------------- status

    function peersCount() {
        const peers = bus.get('peers', {}) || {};
        const oldest = Date.now() - bus.setting('HEARTBEAT_KILL_OLD_PERIOD');
        const live = Object.keys(peers).filter((tab) => peers[tab] >= oldest);
        const master = bus.get('master', null);
        return live.length + (master && live.indexOf(master) === -1 ? 1 : 0);
    }

    function refreshStats() {
        $('tab-id').textContent = shortTab(bus.getTabId());
        $('master-id').textContent = shortTab(bus.get('master', null));
        $('tab-count').textContent = String(Math.max(1, peersCount()));
        $('last-id').textContent = String(bus.last);
        $('received-count').textContent = String(received.length);
        $('latency').textContent = latencies.length ? formatLatency(median(latencies)) : '–';
        const role = $('role');
        role.textContent = bus.isMasterTab() ? 'Polling tab' : 'Following';
        role.className = 'badge ' + (bus.isMasterTab() ? 'badge-accent' : 'badge-muted');
        role.title = bus.isMasterTab()
            ? 'This tab polls the server for the whole browser'
            : 'Another tab polls; this one receives through the browser';
        document.body.dataset.role = bus.isMasterTab() ? 'master' : 'follower';
        if (!retryUntil && bus.online && $('connection').classList.contains('badge-muted')) {
            setConnection('Live', 'badge-ok');
        }
    }

    let retryUntil = 0;
    let retryTimer = null;

    function setConnection(text, kind) {
        const badge = $('connection');
        badge.textContent = text;
        badge.className = 'badge ' + kind;
    }

    function showRetry(delay) {
        retryUntil = Date.now() + delay;
        clearInterval(retryTimer);
        const tick = () => {
            const left = Math.ceil((retryUntil - Date.now()) / 1000);
            if (left <= 0) {
                clearInterval(retryTimer);
                setConnection('Reconnecting…', 'badge-warn');
                return;
            }
            setConnection('Offline · retry in ' + left + ' s', 'badge-warn');
        };
        tick();
        retryTimer = setInterval(tick, 250);
    }

    function showLive() {
        retryUntil = 0;
        clearInterval(retryTimer);
        setConnection('Live', 'badge-ok');
    }

    // In every tab: what the polling tab sees of the server.
    bus.on('connection', (state) => {
        if (state.online) {
            showLive();
        } else {
            showRetry(Math.max(0, state.retryAt - Date.now()));
        }
    });
    bus.on('poll_answer', showLive);
    bus.on('notification', showLive);
    bus.on('become_master', refreshStats);
    bus.on('no_longer_master', refreshStats);
    bus.on('notification', onNotification);

    // ---------------------------------------------------------------- channels

    function renderChannels() {
        const list = $('channels');
        const options = $('channel-options');
        list.replaceChildren();
        options.replaceChildren();
        bus.ownChannels.slice().sort().forEach((channel) => {
            const chip = element('li', 'chip');
            chip.style.setProperty('--tag', channelColor(channel));
            chip.append(element('span', 'chip-dot'), element('span', 'chip-name', channel));
            const leave = element('button', 'chip-leave', '×');
            leave.type = 'button';
            leave.title = 'Leave ' + channel;
            leave.setAttribute('aria-label', 'Leave ' + channel);
            leave.addEventListener('click', () => {
                bus.deleteChannel(channel);
                renderChannels();
            });
            chip.append(leave);
            list.append(chip);
            const option = element('option');
            option.value = channel;
            options.append(option);
        });
        if (!bus.ownChannels.length) {
            list.append(element('li', 'chips-empty', 'This tab listens to no channel.'));
        }
        const others = bus.channels.filter((channel) => bus.ownChannels.indexOf(channel) === -1);
        const note = $('other-channels');
        note.textContent = others.length ? 'Other tabs also listen to ' + others.sort().join(', ') + '.' : '';
        note.hidden = !others.length;
    }

    $('join-form').addEventListener('submit', (event) => {
        event.preventDefault();
        const input = $('join-channel');
        const channel = input.value.trim();
        if (channel) {
            bus.addChannel(channel);
            $('send-channel').value = channel;
            input.value = '';
            renderChannels();
        }
    });

    $('send-form').addEventListener('submit', (event) => {
        event.preventDefault();
        const channel = $('send-channel').value.trim();
        const text = $('send-text').value;
        const error = $('send-error');
        const button = $('send-button');
        button.disabled = true;
        error.hidden = true;
        send({channel: channel, message: {text: text, sent_at: Date.now(), from: bus.getTabId()}})
            .then(() => {
                $('send-text').value = '';
                $('send-text').focus();
            }, (failure) => {
                error.textContent = 'Not sent: ' + failure.message;
                error.hidden = false;
            })
            .finally(() => { button.disabled = false; });
    });

    $('clear-feed').addEventListener('click', () => {
        $('feed').replaceChildren();
        $('feed-empty').hidden = false;
    });

    // The channels of the other tabs change when they join or leave one.
    window.addEventListener('storage', (event) => {
        if (event.key && event.key.endsWith('.channels')) {
            setTimeout(renderChannels);
        }
    });

    // ---------------------------------------------------------------- start

    $('curl-example').textContent = "curl -H 'Content-Type: application/json' " +
        `-d '{"params": {"channel": "${DEFAULT_CHANNEL}", "message": {"text": "Hello", "sent_at": '$(date +%s%3N)'}}}' ` +
        window.location.origin + '/longpolling/send';
    $('send-channel').value = DEFAULT_CHANNEL;
    bus.addChannel(DEFAULT_CHANNEL);
    bus.startPolling();
    renderChannels();
    refreshStats();
    const known = bus.get('connection', null);
    if (known && !known.online && known.retryAt > Date.now()) {
        showRetry(known.retryAt - Date.now());
    }
    setInterval(refreshStats, 1000);
})();
