/*
 * bus.Longpolling: Odoo's long-polling bus class, a thin Odoo layer over the
 * framework-free imbus.Poller (static/src/js/core/longpoll.js, which the asset
 * bundle loads first).
 *
 * Events: 'notification' ([[channel, message], ...]), 'window_focus' (true).
 * Overridable hooks kept from Odoo 14: _poll, _makePoll, _getLastPresence,
 * _onFocusChange, _onPresence, _onPoll. Constants: ERROR_RETRY_DELAY, POLL_ROUTE.
 */
odoo.define('bus.Longpolling', function (require) {
'use strict';

var Bus = require('web.Bus');
var ServicesMixin = require('web.ServicesMixin');

var imbus = window.imbus;
var WINDOW_EVENTS = ['focus', 'blur', 'click', 'keydown', 'keyup'];
var busCounter = 0;

/** The core reads the timing constants from the Odoo object at each use. */
function settingsOf(owner) {
    var settings = {};
    Object.keys(imbus.DEFAULTS).forEach(function (name) {
        Object.defineProperty(settings, name, {
            get: function () { return owner[name]; },
        });
    });
    return settings;
}

/** Exposes a core field under the private name Odoo 14 code used. */
function alias(Class, privateName, coreField) {
    Object.defineProperty(Class.prototype, privateName, {
        configurable: true,
        get: function () { return this._core ? this._core[coreField] : undefined; },
        set: function (value) {
            if (this._core) {
                this._core[coreField] = value;
            }
        },
    });
}

var LongpollingBus = Bus.extend(ServicesMixin, {
    PARTNERS_PRESENCE_CHECK_PERIOD: 30000,
    ERROR_RETRY_DELAY: 10000,
    POLL_ROUTE: '/longpolling/poll',

    /**
     * @override
     */
    init: function (parent, params) {
        this._super.apply(this, arguments);
        this._id = 'bus' + (++busCounter);
        this._longPollingBusId = this._id;
        this._core = this._createCore();
        this._connectCore();
        this._listenWindow();
    },
    /**
     * @override
     */
    destroy: function () {
        this.stopPolling();
        this._core.destroy();
        this._unlistenWindow();
        this._super();
    },

    //--------------------------------------------------------------------------
    // Public
    //--------------------------------------------------------------------------

    /**
     * Listens to one more channel; a pending poll is aborted and sent again
     * at once with the new list (or polling starts).
     *
     * @param {string} channel
     */
    addChannel: function (channel) {
        this._core.addChannel(channel);
    },
    /**
     * @param {string} channel
     */
    deleteChannel: function (channel) {
        this._core.deleteChannel(channel);
    },
    /**
     * @returns {boolean}
     */
    isOdooFocused: function () {
        return this._core.isOdooFocused();
    },
    startPolling: function () {
        this._core.startPolling();
    },
    /**
     * Stops polling (aborting the pending poll) and forgets this tab's channels.
     */
    stopPolling: function () {
        if (this._core.clearChannels) {
            this._core.clearChannels();
        } else {
            this._core.channels.length = 0;
        }
        this._core.stopPolling();
    },
    /**
     * Sent with every poll from now on.
     *
     * @param {string} key
     * @param {any} value
     */
    updateOption: function (key, value) {
        this._core.updateOption(key, value);
    },

    //--------------------------------------------------------------------------
    // Private
    //--------------------------------------------------------------------------

    /**
     * @private
     * @returns {imbus.Poller}
     */
    _createCore: function () {
        return new imbus.Poller(this._coreOptions());
    },
    /**
     * @private
     */
    _coreOptions: function () {
        var self = this;
        return {
            settings: settingsOf(this),
            request: function (params) {
                return self._guardedPoll(params);
            },
        };
    },
    /**
     * Routes the core's poll cycle and presence through this object's
     * overridable methods, and re-triggers the core's events here.
     *
     * @private
     */
    _connectCore: function () {
        var self = this;
        var core = this._core;
        this._coreBase = {
            poll: core.poll.bind(core),
            getLastPresence: core.getLastPresence.bind(core),
        };
        core.poll = function () { self._poll(); };
        core.getLastPresence = function () { return self._getLastPresence(); };
        ['notification', 'window_focus', 'become_master', 'no_longer_master'].forEach(function (name) {
            core.on(name, function (value) {
                if (value === undefined) {
                    self.trigger(name);
                } else {
                    self.trigger(name, value);
                }
            });
        });
    },
    /**
     * A failed poll never shows an error dialog: its event is cancelled.
     *
     * @private
     */
    _guardedPoll: function (params) {
        var rpc = this._makePoll(params);
        var guarded = Promise.resolve(rpc).then(null, function (reason) {
            if (reason && reason.event && typeof reason.event.preventDefault === 'function') {
                reason.event.preventDefault();
            }
            throw reason;
        });
        guarded.abort = function () {
            if (rpc && typeof rpc.abort === 'function') {
                rpc.abort();
            }
        };
        return guarded;
    },
    /**
     * @private
     * @returns {integer} time of the last user activity (ms since epoch)
     */
    _getLastPresence: function () {
        return this._coreBase.getLastPresence();
    },
    /**
     * One poll cycle (the core calls it again after each answer).
     *
     * @private
     */
    _poll: function () {
        this._coreBase.poll();
    },
    /**
     * @private
     * @param {Object} data {channels, last, options}
     * @returns {Promise} with an abort() method
     */
    _makePoll: function (data) {
        return this._rpc({route: this.POLL_ROUTE, params: data}, {shadow: true, timeout: 60000});
    },
    /**
     * @private
     */
    _listenWindow: function () {
        var self = this;
        this._windowHandlers = {
            focus: function () { self._onFocusChange({focus: true}); },
            blur: function () { self._onFocusChange({focus: false}); },
            click: function () { self._onPresence(); },
            keydown: function () { self._onPresence(); },
            keyup: function () { self._onPresence(); },
        };
        WINDOW_EVENTS.forEach(function (name) {
            window.addEventListener(name, self._windowHandlers[name]);
        });
    },
    /**
     * @private
     */
    _unlistenWindow: function () {
        var self = this;
        WINDOW_EVENTS.forEach(function (name) {
            window.removeEventListener(name, self._windowHandlers[name]);
        });
    },

    //--------------------------------------------------------------------------
    // Handlers
    //--------------------------------------------------------------------------

    /**
     * @private
     * @param {Object} params
     * @param {boolean} params.focus
     */
    _onFocusChange: function (params) {
        this._core.onFocusChange(params.focus);
    },
    /**
     * Handles a poll answer; returns the new [channel, message] pairs.
     *
     * @private
     * @param {Object[]} notifications {id, channel, message}
     * @returns {Array[]}
     */
    _onPoll: function (notifications) {
        return this._core.onPoll(notifications).map(function (item) {
            return [item.channel, item.message];
        });
    },
    /**
     * @private
     */
    _onPresence: function () {
        this._core.onPresence();
    },
});

alias(LongpollingBus, '_channels', 'channels');
alias(LongpollingBus, '_options', 'options');
alias(LongpollingBus, '_lastNotificationID', 'last');
alias(LongpollingBus, '_isActive', 'active');
alias(LongpollingBus, '_pollRpc', 'pending');
alias(LongpollingBus, '_isOdooFocused', 'focused');
alias(LongpollingBus, '_lastPresenceTime', 'lastPresence');
LongpollingBus.alias = alias;

return LongpollingBus;

});
