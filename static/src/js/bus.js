/*
 * bus.bus: the API of the older releases, for widgets still written against it.
 *
 *   var bus = require('bus.bus').bus;
 *   bus.on('notification', this, function (notifications) { ... });
 *   bus.add_channel('my_channel');
 *   bus.start_polling();
 *
 * `bus` is a facade over the page's `bus_service` (one poller per browser, as
 * everywhere else); calls made before the service exists are replayed once it
 * is deployed.
 */
odoo.define('bus.bus', function (require) {
'use strict';

var Bus = require('web.Bus');
var BusService = require('bus.BusService');

var FORWARDED_EVENTS = ['notification', 'window_focus', 'become_master', 'no_longer_master'];

var LegacyBus = Bus.extend({
    init: function () {
        this._super.apply(this, arguments);
        this._service = null;
        this._queued = [];
    },

    //--------------------------------------------------------------------------
    // Public
    //--------------------------------------------------------------------------

    add_channel: function (channel) {
        this._withService(function (service) { service.addChannel(channel); });
    },
    delete_channel: function (channel) {
        this._withService(function (service) { service.deleteChannel(channel); });
    },
    start_polling: function () {
        this._withService(function (service) { service.startPolling(); });
    },
    stop_polling: function () {
        this._withService(function (service) { service.stopPolling(); });
    },
    update_option: function (key, value) {
        this._withService(function (service) { service.updateOption(key, value); });
    },
    /**
     * @returns {boolean}
     */
    is_odoo_focused: function () {
        return this._service ? this._service.isOdooFocused() : true;
    },
    /**
     * @returns {boolean}
     */
    is_master: function () {
        return this._service ? this._service.isMasterTab() : false;
    },

    //--------------------------------------------------------------------------
    // Private
    //--------------------------------------------------------------------------

    /**
     * Follows a newly deployed bus_service: re-trigger its events here.
     *
     * @private
     * @param {Object} service
     */
    _attach: function (service) {
        var self = this;
        if (this._service === service) {
            return;
        }
        this._service = service;
        FORWARDED_EVENTS.forEach(function (name) {
            service.on(name, self, function (value) {
                if (self._service === service) {
                    self.trigger(name, value);
                }
            });
        });
        this._queued.splice(0).forEach(function (action) {
            action(service);
        });
    },
    /**
     * @private
     * @param {function} action
     */
    _withService: function (action) {
        if (this._service && !this._isGone(this._service)) {
            action(this._service);
        } else {
            this._queued.push(action);
        }
    },
    /**
     * @private
     */
    _isGone: function (service) {
        return typeof service.isDestroyed === 'function' && service.isDestroyed();
    },
});

var legacy = {
    Bus: LegacyBus,
    ERROR_DELAY: 10000,
    bus: new LegacyBus(),
};

BusService.onDeploy(function (service) {
    legacy.bus._attach(service);
});

return legacy;

});
