/*
 * bus.CrossTab: the long-polling bus shared by all tabs of a browser, as an
 * Odoo class over imbus.CrossTab (static/src/js/core/crosstab.js).
 *
 * One master tab polls; the others get its notifications, and share their
 * channels and options, through Odoo's `local_storage` service (keys
 * `bus.<origin>.<name>`), so tests can swap it for an in-memory storage.
 *
 * The master is the tab holding a Web Lock when the browser has them and the
 * local_storage service really is the browser's localStorage (the lock is
 * released at once when a tab closes or crashes, and a throttled background
 * tab keeps it); otherwise heartbeats through the storage elect it, as in
 * Odoo 14 (in-memory storages of tests always use heartbeats).
 *
 * Events: those of bus.Longpolling plus 'become_master', 'no_longer_master'.
 * Timing constants (ms), read at each use so subclasses may shorten them:
 * TAB_HEARTBEAT_PERIOD, MASTER_TAB_HEARTBEAT_PERIOD,
 * HEARTBEAT_OUT_OF_DATE_PERIOD, HEARTBEAT_KILL_OLD_PERIOD.
 */
odoo.define('bus.CrossTab', function (require) {
'use strict';

var Longpolling = require('bus.Longpolling');
var session = require('web.session');

var imbus = window.imbus;
var tabCounter = 0;

var CrossTabBus = Longpolling.extend({
    TAB_HEARTBEAT_PERIOD: 10000,
    MASTER_TAB_HEARTBEAT_PERIOD: 1500,
    HEARTBEAT_OUT_OF_DATE_PERIOD: 5000,
    HEARTBEAT_KILL_OLD_PERIOD: 15000,
    LOCAL_STORAGE_PREFIX: 'bus',
    USE_WEB_LOCKS: true,

    /**
     * @override
     */
    init: function () {
        this._super.apply(this, arguments);
        this._id = this._core.tabId;
    },
    /**
     * @override
     */
    destroy: function () {
        this._super.apply(this, arguments);
        if (this._unloadHandler) {
            window.removeEventListener('pagehide', this._unloadHandler);
        }
    },

    //--------------------------------------------------------------------------
    // Public
    //--------------------------------------------------------------------------

    /**
     * Also shares the channel list with the other tabs.
     *
     * @override
     */
    addChannel: function (channel) {
        this._super.apply(this, arguments);
    },
    /**
     * @override
     */
    deleteChannel: function (channel) {
        this._super.apply(this, arguments);
    },
    /**
     * @returns {string}
     */
    getTabId: function () {
        return this._core.getTabId();
    },
    /**
     * @returns {boolean}
     */
    isMasterTab: function () {
        return this._core.isMasterTab();
    },

    //--------------------------------------------------------------------------
    // Private
    //--------------------------------------------------------------------------

    /**
     * @override
     */
    _createCore: function () {
        var self = this;
        var origin = (session.origin || window.location.origin).replace(/:\/{0,2}/g, '_');
        var prefix = this.LOCAL_STORAGE_PREFIX + '.' + origin + '.';
        this._sanitizedOrigin = origin;
        return new imbus.CrossTab(Object.assign(this._coreOptions(), {
            store: this._storage(),
            prefix: prefix,
            locks: this._webLocks(prefix),
            tabId: this.LOCAL_STORAGE_PREFIX + (++tabCounter) + ':' + Date.now(),
            onUnload: function () {
                self._registerWindowUnload();
            },
        }));
    },
    /**
     * The store the core shares state through: Odoo's local_storage service.
     *
     * @private
     */
    _storage: function () {
        var self = this;
        return {
            getItem: function (key, fallback) {
                return self.call('local_storage', 'getItem', key, fallback);
            },
            setItem: function (key, value) {
                self.call('local_storage', 'setItem', key, value);
            },
            removeItem: function (key) {
                self.call('local_storage', 'removeItem', key);
            },
            onStorage: function (handler) {
                self._storageHandler = handler;
                self.call('local_storage', 'onStorage', self, self._onStorage);
            },
        };
    },
    /**
     * navigator.locks, if the browser has it and the local_storage service
     * writes to the browser's localStorage (shared by the tabs), else null.
     *
     * @private
     * @param {string} prefix
     */
    _webLocks: function (prefix) {
        if (!this.USE_WEB_LOCKS || !window.navigator.locks) {
            return null;
        }
        var key = prefix + 'storage_probe';
        var token = 'probe-' + Math.random();
        var shared = false;
        this.call('local_storage', 'setItem', key, token);
        try {
            shared = window.localStorage.getItem(key) === JSON.stringify(token);
        } catch (error) {
            shared = false;
        }
        this.call('local_storage', 'removeItem', key);
        return shared ? window.navigator.locks : null;
    },
    /**
     * @private
     * @param {string} method getItem, setItem or removeItem
     * @param {string} key without prefix
     * @param {any} param
     */
    _callLocalStorage: function (method, key, param) {
        return this.call('local_storage', method, this._generateKey(key), param);
    },
    /**
     * @private
     * @param {string} key
     * @returns {string} the key prefixed with the addon name and origin
     */
    _generateKey: function (key) {
        return this._core.key(key);
    },
    /**
     * @private
     */
    _heartbeat: function () {
        this._core.heartbeat();
    },
    /**
     * @private
     */
    _registerWindowUnload: function () {
        this._unloadHandler = this._onUnload.bind(this);
        window.addEventListener('pagehide', this._unloadHandler);
    },
    /**
     * @private
     */
    _startElection: function () {
        this._core.elect();
    },

    //--------------------------------------------------------------------------
    // Handlers
    //--------------------------------------------------------------------------

    /**
     * @private
     * @param {Object} event {key, newValue}
     */
    _onStorage: function (event) {
        if (this._storageHandler) {
            this._storageHandler(event);
        }
    },
    /**
     * The tab goes away: leave the peers and hand over the master role.
     *
     * @private
     */
    _onUnload: function () {
        this._core.leave();
    },
});

Longpolling.alias(CrossTabBus, '_isMasterTab', 'isMaster');
Longpolling.alias(CrossTabBus, '_isRegistered', 'registered');

return CrossTabBus;

});
