/*
 * imbus core, part 2: one poller per browser, shared by all its tabs.
 *
 * Every tab of an origin builds an imbus.CrossTab. One of them, the master,
 * runs the long-poll loop; it shares what it receives, and the other tabs share
 * their channels and options, through a small key-value store:
 *
 *   store.getItem(key, default)   store.setItem(key, value)   store.removeItem(key)
 *   store.onStorage(handler)      handler({key, newValue})   (newValue: JSON text or null)
 *   store.publish(key, value)     optional: a message to the other tabs, not kept
 *
 * imbus.browserStore() implements it on localStorage + `storage` events (and
 * BroadcastChannel for the notifications when the browser has it); Odoo's
 * wrappers implement it on Odoo's `local_storage` service.
 *
 * Keys (after the prefix): peers {tabId: time}, master (tabId), heartbeat (time),
 * channels {tabId: [channel...]}, options, last, last_ts,
 * notification {from, items, last}, focus, lastPresence,
 * connection {online, retryAt} (the master's view of the server).
 *
 * Each tab owns its channels (`ownChannels`); the master polls the union of
 * all tabs' channels (`channels`), so a tab leaving a channel never takes it
 * away from another tab, and a tab that closes takes its channels with it.
 *
 * Choosing the master:
 * - with Web Locks (options.locks = navigator.locks): the tab holding the lock;
 *   the browser hands it to the next tab as soon as the master closes or dies.
 * - otherwise heartbeats: the master writes `heartbeat` every
 *   MASTER_TAB_HEARTBEAT_PERIOD; the others look every TAB_HEARTBEAT_PERIOD and,
 *   if it is older than HEARTBEAT_OUT_OF_DATE_PERIOD (or the master key is
 *   removed by a closing master), the oldest live peer takes over.
 * The new master polls from the shared `last`; every tab drops ids it has seen.
 *
 * Events: those of imbus.Poller, plus 'become_master', 'no_longer_master' and
 * 'connection' ({online, retryAt}: in every tab, what the master sees).
 */
(function (root) {
    'use strict';

    const imbus = root.imbus;
    let tabCounter = 0;

    function sameSet(a, b) {
        return a.length === b.length && a.every((x) => b.indexOf(x) !== -1);
    }

    function parse(text) {
        try {
            return JSON.parse(text);
        } catch (error) {
            return undefined;
        }
    }

    class CrossTab extends imbus.Poller {
        /**
         * options.store    (required) see above
         * options.prefix   key prefix, e.g. 'bus.http_localhost_8069.'
         * options.tabId    defaults to a unique id
         * options.locks    a LockManager to elect the master with, or null
         * options.onUnload(fn)  registers fn to run when the page goes away
         */
        constructor(options) {
            super(options);
            this.store = options.store;
            this.prefix = options.prefix || 'imbus.';
            this.tabId = options.tabId || ('tab' + (++tabCounter) + ':' + Date.now() +
                ':' + Math.random().toString(36).slice(2, 7));
            this.locks = options.locks || null;
            this.onUnloadRegister = options.onUnload || null;
            this.ownChannels = [];
            this.isMaster = false;
            this.registered = false;
            this.lastHeartbeat = 0;
            this.heartbeatTimer = null;
            this.last = this.sharedLast();
            this.store.onStorage((event) => this.onStorage(event));
            this.online = true;
            this.on('poll_error', (error, delay) => this.shareConnection(false, Date.now() + delay));
            this.on('poll_answer', () => this.shareConnection(true, 0));
        }

        /** The master tells every tab whether the server answers. */
        shareConnection(online, retryAt) {
            if (!this.isMaster || online === this.online) {
                return;
            }
            this.online = online;
            const state = {online: online, retryAt: retryAt};
            this.set('connection', state);
            this.emit('connection', state);
        }

        key(name) {
            return this.prefix + name;
        }

        get(name, fallback) {
            return this.store.getItem(this.key(name), fallback);
        }

        set(name, value) {
            this.store.setItem(this.key(name), value);
        }

        /** The `last` id the tabs share, unless it is too old to resume from. */
        sharedLast() {
            const stamp = this.get('last_ts', 0);
            if (stamp + this.setting('LAST_ID_MAX_AGE') < Date.now()) {
                this.store.removeItem(this.key('last'));
                return 0;
            }
            return this.get('last', 0) || 0;
        }

        // ------------------------------------------------------------------ public

        getTabId() {
            return this.tabId;
        }

        isMasterTab() {
            return this.isMaster;
        }

        addChannel(channel) {
            if (this.ownChannels.indexOf(channel) !== -1) {
                return false;
            }
            this.ownChannels.push(channel);
            if (!this.registered) {
                this.touchPeer();  // be a known peer before owning channels
            }
            this.shareOwnChannels();
            if (!this.registered) {
                this.register();
            }
            return true;
        }

        deleteChannel(channel) {
            const index = this.ownChannels.indexOf(channel);
            if (index === -1) {
                return false;
            }
            this.ownChannels.splice(index, 1);
            this.shareOwnChannels();
            return true;
        }

        /** Forgets all of this tab's channels (the other tabs keep theirs). */
        clearChannels() {
            this.ownChannels.length = 0;
            this.shareOwnChannels();
        }

        startPolling() {
            if (!this.registered) {
                this.register();
                return;
            }
            if (this.isMaster) {
                super.startPolling();
            }
        }

        updateOption(key, value) {
            super.updateOption(key, value);
            this.set('options', this.options);
        }

        onFocusChange(focused) {
            super.onFocusChange(focused);
            this.set('focus', focused);
        }

        destroy() {
            this.leave();
            clearTimeout(this.heartbeatTimer);
            super.destroy();
        }

        // ------------------------------------------------------- shared channels

        /** Publishes this tab's channels, then polls the new union at once if it changed. */
        shareOwnChannels() {
            const byTab = this.get('channels', null);
            const shared = byTab && typeof byTab === 'object' && !Array.isArray(byTab) ? byTab : {};
            if (this.ownChannels.length) {
                shared[this.tabId] = this.ownChannels.slice();
            } else {
                delete shared[this.tabId];
            }
            this.set('channels', shared);
            this.useChannels(shared);
        }

        /** Puts this tab's channels back if another tab dropped them (a race on the map). */
        checkOwnChannels() {
            const byTab = this.get('channels', null) || {};
            if (!sameSet(Array.isArray(byTab[this.tabId]) ? byTab[this.tabId] : [], this.ownChannels)) {
                this.shareOwnChannels();
            }
        }

        /** Sets `channels` to the union of every tab's channels; re-polls if it changed. */
        useChannels(byTab) {
            const union = this.ownChannels.slice();
            for (const tab of Object.keys(byTab || {})) {
                for (const channel of Array.isArray(byTab[tab]) ? byTab[tab] : []) {
                    if (union.indexOf(channel) === -1) {
                        union.push(channel);
                    }
                }
            }
            if (sameSet(union, this.channels)) {
                return;
            }
            this.channels.splice(0, this.channels.length, ...union);
            if (this.isMaster) {
                this.restart();
            }
        }

        // ------------------------------------------------------- joining the tabs

        register() {
            this.registered = true;
            this.touchPeer();
            if (this.onUnloadRegister && !this.unloadRegistered) {
                this.unloadRegistered = true;
                this.onUnloadRegister(() => this.leave());
            }
            if (this.locks) {
                this.requestLock();
            } else if (!this.get('master', null)) {
                this.elect();
            }
            this.heartbeat();
            if (this.isMaster) {
                this.set('options', this.options);
            } else {
                this.options = this.get('options', this.options) || {};
            }
        }

        /** The page goes away: give up the master role at once. */
        leave() {
            if (!this.registered) {
                return;
            }
            this.left = true;
            const peers = this.get('peers', {}) || {};
            delete peers[this.tabId];
            this.set('peers', peers);
            const byTab = this.get('channels', null);
            if (byTab && typeof byTab === 'object' && this.tabId in byTab) {
                delete byTab[this.tabId];
                this.set('channels', byTab);
            }
            if (this.isMaster && this.get('master', null) === this.tabId) {
                this.set('heartbeat', 0);
                this.store.removeItem(this.key('master'));
            }
            if (this.releaseLock) {
                this.releaseLock();
                this.releaseLock = null;
            }
        }

        /** The page came back from the back-forward cache after leave(): join again. */
        rejoin() {
            super.stopPolling();
            this.isMaster = false;
            this.registered = false;
            this.left = false;
            this.shareOwnChannels();
            this.register();
        }

        touchPeer() {
            const peers = this.get('peers', {}) || {};
            peers[this.tabId] = Date.now();
            this.set('peers', peers);
        }

        requestLock() {
            const granted = () => new Promise((release) => {
                if (this.destroyed) {
                    release();
                    return;
                }
                this.releaseLock = release;
                this.becomeMaster();
            });
            Promise.resolve().then(() => this.locks.request(this.key('master_lock'), granted)).catch(() => {
                // Locks refused (sandboxed frame...): fall back to heartbeats.
                if (!this.isMaster) {
                    this.locks = null;
                    if (!this.get('master', null)) {
                        this.elect();
                    }
                }
            });
        }

        /** Heartbeat election: the first live peer in the shared list takes over. */
        elect() {
            if (this.isMaster || this.locks) {
                return;
            }
            const oldest = Date.now() - this.setting('HEARTBEAT_KILL_OLD_PERIOD');
            const peers = this.get('peers', {}) || {};
            const next = Object.keys(peers).find((tab) => peers[tab] >= oldest);
            if (next === this.tabId) {
                this.becomeMaster();
            }
        }

        becomeMaster() {
            const now = Date.now();
            this.lastHeartbeat = now;
            this.set('heartbeat', now);
            this.set('master', this.tabId);
            this.isMaster = true;
            this.last = Math.max(this.last, this.get('last', 0) || 0);
            this.useChannels(this.get('channels', null));
            const peers = this.get('peers', {}) || {};
            delete peers[this.tabId];
            this.set('peers', peers);
            this.startPolling();
            this.emit('become_master');
        }

        stepDown() {
            this.isMaster = false;
            this.lastHeartbeat = 0;
            this.touchPeer();
            super.stopPolling();
            this.emit('no_longer_master');
        }

        heartbeat() {
            clearTimeout(this.heartbeatTimer);
            if (this.destroyed) {
                return;
            }
            const now = Date.now();
            let beat = parseInt(this.get('heartbeat', 0), 10) || 0;
            if (!this.locks && beat + this.setting('HEARTBEAT_OUT_OF_DATE_PERIOD') < now) {
                this.elect();
                beat = parseInt(this.get('heartbeat', 0), 10) || 0;
            }
            if (this.isMaster && !this.locks && beat !== this.lastHeartbeat) {
                this.stepDown();  // another tab took over meanwhile
            } else if (this.isMaster) {
                this.lastHeartbeat = now;
                this.set('heartbeat', now);
                this.set('master', this.tabId);
                this.forgetDeadPeers(now);
            } else {
                this.touchPeer();
            }
            if (!this.left) {
                this.checkOwnChannels();
            }
            const period = this.setting(this.isMaster ? 'MASTER_TAB_HEARTBEAT_PERIOD' : 'TAB_HEARTBEAT_PERIOD');
            if (this.lastPresence + period > now) {
                this.set('lastPresence', this.lastPresence);
            }
            this.heartbeatTimer = setTimeout(() => this.heartbeat(), period);
        }

        /** The master drops the peers (and their channels) silent for too long. */
        forgetDeadPeers(now) {
            const oldest = now - this.setting('HEARTBEAT_KILL_OLD_PERIOD');
            const peers = this.get('peers', {}) || {};
            const alive = {};
            for (const tab of Object.keys(peers)) {
                if (peers[tab] > oldest) {
                    alive[tab] = peers[tab];
                }
            }
            this.set('peers', alive);
            const byTab = this.get('channels', null);
            if (!byTab || typeof byTab !== 'object' || Array.isArray(byTab)) {
                return;
            }
            const master = this.get('master', null);
            const dead = Object.keys(byTab).filter((tab) => tab !== this.tabId && tab !== master && !(tab in alive));
            if (dead.length) {
                dead.forEach((tab) => delete byTab[tab]);
                this.set('channels', byTab);
                this.useChannels(byTab);
            }
        }

        getLastPresence() {
            return this.get('lastPresence', 0) || super.getLastPresence();
        }

        // ------------------------------------------------------------- sharing

        /** The master shares what it receives (after its own listeners ran). */
        onPoll(items) {
            const fresh = super.onPoll(items);
            if (this.isMaster && fresh.length) {
                this.set('last', this.last);
                this.set('last_ts', Date.now());
                const message = {from: this.tabId, last: this.last, items: fresh};
                if (this.store.publish) {
                    this.store.publish(this.key('notification'), message);
                } else {
                    this.set('notification', message);
                }
            }
            return fresh;
        }

        onStorage(event) {
            if (this.destroyed || !event || typeof event.key !== 'string' ||
                event.key.indexOf(this.prefix) !== 0) {
                return;
            }
            const name = event.key.slice(this.prefix.length);
            const value = event.newValue === null || event.newValue === undefined
                ? null : parse(event.newValue);
            const handler = this['onShared_' + name];
            if (handler) {
                handler.call(this, value);
            }
        }

        onShared_master(value) {
            if (this.registered && !value) {
                this.elect();
            }
        }

        onShared_last(value) {
            this.last = Math.max(this.last, value || 0);
        }

        onShared_notification(value) {
            if (this.isMaster || !value || value.from === this.tabId) {
                return;
            }
            this.last = Math.max(this.last, value.last || 0);
            super.onPoll(value.items || []);
        }

        onShared_channels(value) {
            if (value && typeof value === 'object' && !Array.isArray(value)) {
                this.useChannels(value);
            }
        }

        onShared_options(value) {
            this.options = value || {};
        }

        onShared_connection(value) {
            if (!this.isMaster && value) {
                this.online = Boolean(value.online);
                this.emit('connection', value);
            }
        }

        onShared_focus(value) {
            this.focused = Boolean(value);
            this.emit('window_focus', this.focused);
        }
    }
    imbus.CrossTab = CrossTab;

    // ----------------------------------------------------------------- browser

    function usableLocalStorage() {
        try {
            const storage = root.localStorage;
            storage.setItem('imbus.probe', '1');
            storage.removeItem('imbus.probe');
            return storage;
        } catch (error) {
            return null;  // disabled, or private browsing without storage
        }
    }

    /** A Storage-like map for browsers refusing localStorage: this tab alone. */
    function memoryStorage() {
        const items = new Map();
        return {
            getItem: (key) => (items.has(key) ? items.get(key) : null),
            setItem: (key, value) => items.set(key, String(value)),
            removeItem: (key) => items.delete(key),
        };
    }

    /** The store on window.localStorage (+ BroadcastChannel for messages). */
    imbus.browserStore = function (options) {
        const opts = options || {};
        const storage = usableLocalStorage() || memoryStorage();
        const handlers = [];
        const dispatch = (event) => handlers.forEach((handler) => handler(event));
        root.addEventListener('storage', (event) => {
            if (event.storageArea === storage) {
                dispatch({key: event.key, newValue: event.newValue});
            }
        });
        const channel = opts.broadcast !== false && root.BroadcastChannel
            ? new root.BroadcastChannel(opts.name || 'imbus') : null;
        if (channel) {
            channel.onmessage = (event) => dispatch(event.data);
        }
        return {
            getItem(key, fallback) {
                const text = storage.getItem(key);
                const value = text ? parse(text) : undefined;
                return value === undefined ? fallback : value;
            },
            setItem(key, value) {
                try {
                    storage.setItem(key, JSON.stringify(value));
                } catch (error) {
                    // Full or refused: this tab goes on; only this piece of sharing is lost.
                    console.warn('imbus: cannot write ' + key + ' to localStorage:', error);
                }
            },
            removeItem(key) {
                storage.removeItem(key);
            },
            onStorage(handler) {
                handlers.push(handler);
            },
            publish: channel ? (key, value) => {
                channel.postMessage({key: key, newValue: JSON.stringify(value)});
            } : null,
        };
    };

    /**
     * imbus.connect's heartbeat periods: shorter than Odoo's, so that without
     * Web Locks a dead master is replaced within about 6 s.
     */
    imbus.BROWSER_DEFAULTS = {
        TAB_HEARTBEAT_PERIOD: 2000,
        MASTER_TAB_HEARTBEAT_PERIOD: 1000,
        HEARTBEAT_OUT_OF_DATE_PERIOD: 4000,
        HEARTBEAT_KILL_OLD_PERIOD: 7000,
    };

    /**
     * A ready-to-use cross-tab bus for a plain page:
     *   const bus = imbus.connect({settings: {...}});
     *   bus.on('notification', ...); bus.addChannel('demo');
     * settings.USE_LOCKS / settings.USE_BROADCAST (default true) turn off
     * Web Locks or BroadcastChannel, to run on localStorage alone.
     */
    imbus.connect = function (options) {
        const opts = options || {};
        const settings = Object.assign({}, imbus.BROWSER_DEFAULTS, root.imbusSettings, opts.settings);
        const flag = (name) => imbus.setting(settings, name) !== false;
        const store = opts.store || imbus.browserStore({broadcast: flag('USE_BROADCAST')});
        if (!store.publish) {
            delete store.publish;
        }
        const locks = flag('USE_LOCKS') && root.navigator && root.navigator.locks
            ? root.navigator.locks : null;
        const origin = root.location.origin.replace(/:\/{0,2}/g, '_');
        const bus = new CrossTab({
            settings: settings,
            store: store,
            locks: locks,
            prefix: 'imbus.' + origin + '.',
            request: opts.request,
            onUnload: (leave) => root.addEventListener('pagehide', leave),
        });
        bus.watchWindow(root);
        root.addEventListener('pageshow', (event) => {
            if (event.persisted) {
                bus.rejoin();
            }
        });
        return bus;
    };
})(typeof globalThis !== 'undefined' ? globalThis : window);
