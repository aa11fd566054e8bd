/*
 * imbus core, part 1: the long-poll loop.
 *
 * Plain browser JavaScript, no framework. Loaded as a classic script (it works
 * inside Odoo's concatenated asset bundles as well as on a bare page) and
 * publishes its classes on `globalThis.imbus`.
 *
 *   const poller = new imbus.Poller({request: imbus.jsonRpc('/longpolling/poll')});
 *   poller.on('notification', pairs => ...);   // pairs: [[channel, message], ...]
 *   poller.addChannel('demo');                 // starts polling
 *
 * Timing knobs (all in milliseconds) come from `settings`, then from the global
 * `imbusSettings` object if a page defines one before loading this file, then
 * from imbus.DEFAULTS. Tests use them to shorten the retry delay:
 *
 *   window.imbusSettings = {ERROR_RETRY_DELAY: 200, ERROR_RETRY_JITTER: 0};
 */
(function (root) {
    'use strict';

    const imbus = root.imbus = root.imbus || {};

    imbus.DEFAULTS = {
        POLL_ROUTE: '/longpolling/poll',
        POLL_TIMEOUT: 60000,              // the server answers within 50 s
        ERROR_RETRY_DELAY: 10000,         // after a failed poll wait this long...
        ERROR_RETRY_JITTER: 20000,        // ...plus 1 s to this many whole seconds, at random
        MISROUTED_RETRY_MAX: 300000,      // polls answered "bus.Bus unavailable": the delay doubles up to this
        TAB_HEARTBEAT_PERIOD: 10000,      // a follower tab refreshes its own heartbeat
        MASTER_TAB_HEARTBEAT_PERIOD: 1500,
        HEARTBEAT_OUT_OF_DATE_PERIOD: 5000,   // master silent this long: elect another
        HEARTBEAT_KILL_OLD_PERIOD: 15000,     // peer silent this long: forget it
        LAST_ID_MAX_AGE: 50000,           // a shared `last` older than this is dropped on start
    };

    /** Reads a timing knob: explicit settings, then the page's global, then defaults. */
    imbus.setting = function (settings, name) {
        if (settings && settings[name] !== undefined) {
            return settings[name];
        }
        const global = root.imbusSettings;
        if (global && global[name] !== undefined) {
            return global[name];
        }
        return imbus.DEFAULTS[name];
    };

    /** Milliseconds to wait before polling again after an error. */
    imbus.retryDelay = function (settings) {
        const base = imbus.setting(settings, 'ERROR_RETRY_DELAY');
        const jitter = imbus.setting(settings, 'ERROR_RETRY_JITTER');
        if (jitter >= 1000) {
            return base + (1 + Math.floor(Math.random() * Math.floor(jitter / 1000))) * 1000;
        }
        return base + Math.random() * jitter;
    };

    /**
     * Milliseconds to wait after the `failures`-th poll in a row that reached an HTTP
     * worker (a proxy misrouting /longpolling/): retrying soon cannot help, so the usual
     * delay doubles with each one, up to MISROUTED_RETRY_MAX.
     */
    imbus.misroutedDelay = function (settings, failures) {
        const delay = imbus.retryDelay(settings) * Math.pow(2, Math.min(failures - 1, 30));
        return Math.min(delay, imbus.setting(settings, 'MISROUTED_RETRY_MAX'));
    };

    /**
     * True for the server's "bus.Bus unavailable" answer, as imbus.jsonRpc rejects it
     * (an RpcError) and as Odoo's ajax layer does ({message: the JSON-RPC error}).
     */
    imbus.isMisrouted = function (error) {
        const rpcError = error && (error.data || error.message);
        const texts = [
            error && error.message,
            rpcError && rpcError.data && rpcError.data.message,
        ];
        return texts.some((text) => typeof text === 'string' && text.indexOf('bus.Bus unavailable') === 0);
    };

    /** Minimal event emitter; a throwing handler never breaks the emitter's caller. */
    class Emitter {
        constructor() {
            this._handlers = Object.create(null);
        }
        on(event, handler) {
            (this._handlers[event] = this._handlers[event] || []).push(handler);
            return () => this.off(event, handler);
        }
        off(event, handler) {
            const list = this._handlers[event] || [];
            this._handlers[event] = handler ? list.filter((h) => h !== handler) : [];
        }
        emit(event, ...args) {
            for (const handler of (this._handlers[event] || []).slice()) {
                try {
                    handler(...args);
                } catch (error) {
                    setTimeout(() => { throw error; });
                }
            }
        }
    }
    imbus.Emitter = Emitter;

    /** True when a poll ended because we aborted it (so poll again at once). */
    imbus.isAbort = function (error) {
        return Boolean(error) && (
            error.name === 'AbortError' ||
            error.aborted === true ||
            error.message === 'XmlHttpRequestError abort'  // Odoo's ajax layer
        );
    };

    class RpcError extends Error {
        constructor(message, data) {
            super(message);
            this.name = 'RpcError';
            this.data = data;
        }
    }
    imbus.RpcError = RpcError;

    /**
     * Returns request(params) -> promise of the JSON-RPC `result`, with an
     * `abort()` method. Used for the poll and for sending.
     */
    imbus.jsonRpc = function (route, options) {
        const opts = options || {};
        let counter = 0;
        return function request(params) {
            const controller = new AbortController();
            let aborted = false;
            const timer = opts.timeout ? setTimeout(() => controller.abort(), opts.timeout) : null;
            const body = {jsonrpc: '2.0', method: 'call', params: params, id: ++counter};
            const headers = Object.assign({'Content-Type': 'application/json'}, opts.headers);
            const promise = fetch(route, {
                method: 'POST',
                headers: headers,
                body: JSON.stringify(body),
                signal: controller.signal,
                credentials: 'same-origin',
            }).then((response) => {
                if (!response.ok) {
                    throw new RpcError('HTTP ' + response.status);
                }
                return response.json();
            }).then((answer) => {
                if (answer.error) {
                    const data = answer.error.data || {};
                    throw new RpcError(data.message || answer.error.message, answer.error);
                }
                return answer.result;
            }, (error) => {
                if (aborted) {
                    error.aborted = true;
                }
                throw error;
            }).finally(() => clearTimeout(timer));
            promise.abort = () => {
                aborted = true;
                controller.abort();
            };
            return promise;
        };
    };

    /** Bounded set of notification ids already delivered (dedupe across tabs and retries). */
    class RecentIds {
        constructor(size) {
            this.size = size;
            this.ids = new Set();
        }
        has(id) {
            return this.ids.has(id);
        }
        add(id) {
            this.ids.add(id);
            if (this.ids.size > this.size) {
                this.ids.delete(this.ids.values().next().value);
            }
        }
    }
    imbus.RecentIds = RecentIds;

    /**
     * The long-poll loop of one tab.
     *
     * options.request(params) -> promise (with optional abort()) of the list of
     *   {id, channel, message}; defaults to a JSON-RPC POST to POLL_ROUTE.
     * options.settings: timing knobs, see imbus.DEFAULTS.
     *
     * Events: 'notification' (pairs, items), 'poll' (params), 'poll_answer'
     * (result), 'poll_error' (error, delay), 'window_focus' (focused).
     */
    class Poller extends Emitter {
        constructor(options) {
            super();
            const opts = options || {};
            this.settings = opts.settings || {};
            this.request = opts.request || imbus.jsonRpc(this.setting('POLL_ROUTE'), {
                timeout: this.setting('POLL_TIMEOUT'),
            });
            this.channels = [];
            this.options = {};
            this.last = 0;
            this.active = false;
            this.pending = null;
            this.retryTimer = null;
            this.misrouted = 0;  // polls in a row answered "bus.Bus unavailable"
            this.focused = true;
            this.lastPresence = Date.now();
            this.seen = new RecentIds(5000);
            this.destroyed = false;
        }

        setting(name) {
            return imbus.setting(this.settings, name);
        }

        // ------------------------------------------------------------------ public

        addChannel(channel) {
            if (this.channels.indexOf(channel) !== -1) {
                return false;
            }
            this.channels.push(channel);
            this.restart();
            return true;
        }

        deleteChannel(channel) {
            const index = this.channels.indexOf(channel);
            if (index === -1) {
                return false;
            }
            this.channels.splice(index, 1);
            if (this.pending) {
                this.abortPending();
            }
            return true;
        }

        /** Polls again at once with the current channels (or starts polling). */
        restart() {
            if (this.pending) {
                this.abortPending();
            } else {
                this.startPolling();
            }
        }

        startPolling() {
            if (!this.active) {
                this.active = true;
                this.poll();
            }
        }

        stopPolling() {
            this.active = false;
            clearTimeout(this.retryTimer);
            this.retryTimer = null;
            const pending = this.pending;
            this.pending = null;
            if (pending && pending.abort) {
                pending.abort();
            }
        }

        updateOption(key, value) {
            this.options[key] = value;
        }

        isOdooFocused() {
            return this.focused;
        }

        destroy() {
            this.destroyed = true;
            this.stopPolling();
            if (this.unwatch) {
                this.unwatch();
            }
        }

        // ------------------------------------------------------------- the loop

        /** Entry point of each poll cycle; wrappers may route it elsewhere. */
        poll() {
            this.pollOnce();
        }

        pollOnce() {
            if (!this.active || this.pending || this.destroyed) {
                return;
            }
            clearTimeout(this.retryTimer);
            this.retryTimer = null;
            const params = this.pollParams();
            const request = this.request(params);
            this.pending = request;
            this.emit('poll', params);
            Promise.resolve(request).then(
                (result) => this.onPollAnswer(request, result),
                (error) => this.onPollError(request, error)
            );
        }

        pollParams() {
            const inactivity = Date.now() - this.getLastPresence();
            return {
                channels: this.channels.slice(),
                last: this.last,
                options: Object.assign({}, this.options, {bus_inactivity: inactivity}),
            };
        }

        onPollAnswer(request, result) {
            if (this.pending !== request) {
                return;  // aborted or superseded meanwhile
            }
            this.pending = null;
            this.misrouted = 0;
            try {
                this.emit('poll_answer', result);
                this.onPoll(Array.isArray(result) ? result : []);
            } finally {
                this.poll();  // whatever happened to the answer, keep listening
            }
        }

        onPollError(request, error) {
            if (this.pending !== request) {
                return;
            }
            this.pending = null;
            if (request.abortedOnPurpose || imbus.isAbort(error)) {
                this.poll();
                return;
            }
            let delay = imbus.retryDelay(this.settings);
            if (imbus.isMisrouted(error)) {
                this.misrouted += 1;
                delay = imbus.misroutedDelay(this.settings, this.misrouted);
            }
            this.emit('poll_error', error, delay);
            this.retryTimer = setTimeout(() => {
                this.retryTimer = null;
                this.poll();
            }, delay);
        }

        /** Aborts the pending poll; its end (whatever error it gives) starts the next one. */
        abortPending() {
            const pending = this.pending;
            if (pending) {
                pending.abortedOnPurpose = true;
                if (pending.abort) {
                    pending.abort();
                }
            }
        }

        /** Keeps the items not seen before, advances `last`, emits them. */
        onPoll(items) {
            const fresh = this.accept(items);
            if (fresh.length) {
                this.emit('notification', fresh.map((item) => [item.channel, item.message]), fresh);
            }
            return fresh;
        }

        accept(items) {
            const fresh = [];
            for (const item of items || []) {
                if (item.id !== undefined && item.id !== null) {
                    if (this.seen.has(item.id)) {
                        continue;
                    }
                    this.seen.add(item.id);
                    if (item.id > this.last) {
                        this.last = item.id;
                    }
                }
                fresh.push(item);
            }
            return fresh;
        }

        // ------------------------------------------------- presence and focus

        getLastPresence() {
            return this.lastPresence;
        }

        onPresence() {
            this.lastPresence = Date.now();
        }

        onFocusChange(focused) {
            this.focused = focused;
            if (focused) {
                this.lastPresence = Date.now();
                this.emit('window_focus', true);
            }
        }

        /** Tracks focus and user activity on a window; returns a function that stops it. */
        watchWindow(win) {
            const listeners = {
                focus: () => this.onFocusChange(true),
                blur: () => this.onFocusChange(false),
                click: () => this.onPresence(),
                keydown: () => this.onPresence(),
                keyup: () => this.onPresence(),
            };
            for (const name in listeners) {
                win.addEventListener(name, listeners[name]);
            }
            this.unwatch = () => {
                for (const name in listeners) {
                    win.removeEventListener(name, listeners[name]);
                }
            };
            return this.unwatch;
        }
    }
    imbus.Poller = Poller;
})(typeof globalThis !== 'undefined' ? globalThis : window);
