/*
 * bus.WebClient: tells the user when the assets of the page changed on the
 * server (a `bundle_changed` notification with [bundle xmlid, version]), with
 * a sticky notification offering to reload. The notice waits 10 to 60 s, so
 * that all users do not reload together while the server rebuilds the assets.
 */
odoo.define('bus.WebClient', function (require) {
'use strict';

var core = require('web.core');
var WebClient = require('web.WebClient');

var _t = core._t;

WebClient.include({

    //--------------------------------------------------------------------------
    // Public
    //--------------------------------------------------------------------------

    /**
     * @override
     */
    start: function () {
        this._assetsChangedNotificationId = null;
        this._assets = {};
        return this._super.apply(this, arguments);
    },
    /**
     * Remembers the bundle versions of this page and listens to changes.
     *
     * @override
     */
    show_application: function () {
        var result = this._super.apply(this, arguments);
        var assets = this._assets;
        document.querySelectorAll('[data-asset-xmlid]').forEach(function (node) {
            assets[node.getAttribute('data-asset-xmlid')] = node.getAttribute('data-asset-version');
        });
        this.call('bus_service', 'onNotification', this, this._onNotification);
        this.call('bus_service', 'addChannel', 'bundle_changed');
        return result;
    },

    //--------------------------------------------------------------------------
    // Private
    //--------------------------------------------------------------------------

    /**
     * Shows the notice once (again only after the user closed it).
     *
     * @private
     */
    _displayBundleChangedNotification: function () {
        var self = this;
        if (this._assetsChangedNotificationId) {
            return;
        }
        clearTimeout(this._bundleNotifTimerID);
        this._bundleNotifTimerID = setTimeout(function () {
            self._assetsChangedNotificationId = self.call('notification', 'notify', {
                title: _t('Refresh'),
                message: _t('The page appears to be out of date.'),
                sticky: true,
                onClose: function () {
                    self._assetsChangedNotificationId = null;
                },
                buttons: [{
                    text: _t('Refresh'),
                    primary: true,
                    click: function () {
                        window.location.reload(true);
                    },
                }],
            });
        }, this._getBundleNotificationDelay());
    },
    /**
     * @private
     * @returns {integer} 10 to 59 seconds, in ms, in whole seconds
     */
    _getBundleNotificationDelay: function () {
        return 10000 + 1000 * Math.floor(Math.random() * 50);
    },

    //--------------------------------------------------------------------------
    // Handlers
    //--------------------------------------------------------------------------

    /**
     * @private
     * @param {Array[]} notifications [[channel, message], ...]
     */
    _onNotification: function (notifications) {
        for (var i = 0; i < notifications.length; i++) {
            var channel = notifications[i][0];
            var message = notifications[i][1];
            if (!Array.isArray(channel) || channel[1] !== 'bundle_changed' || !Array.isArray(message)) {
                continue;
            }
            var xmlid = message[0];
            if (xmlid in this._assets && message[1] !== this._assets[xmlid]) {
                this._displayBundleChangedNotification();
                return;
            }
        }
    },
});

});
