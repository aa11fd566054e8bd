/*
 * bus.BusService: the cross-tab bus deployed as the Odoo service `bus_service`.
 *
 *   this.call('bus_service', 'onNotification', this, this._onNotification);
 *   this.call('bus_service', 'addChannel', 'my_channel');
 *   this.call('bus_service', 'startPolling');
 *
 * Adds sendNotification (a desktop notification shown once per browser, or an
 * in-app one) and onNotification to bus.CrossTab.
 */
odoo.define('bus.BusService', function (require) {
'use strict';

var CrossTab = require('bus.CrossTab');
var core = require('web.core');
var ServicesMixin = require('web.ServicesMixin');
var session = require('web.session');

var deployListeners = [];
var deployed = null;  // the page's latest live instance, for the legacy `bus.bus` facade

var ENTITIES = {'&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'", '&#39;': "'", '&#x60;': '`'};

/** Plain text for the native Notification API, which shows no HTML. */
function htmlToText(value) {
    return String(value === undefined || value === null ? '' : value)
        .replace(/&(amp|lt|gt|quot|#x27|#39|#x60);/g, function (entity) {
            return ENTITIES[entity];
        });
}

var BusService = CrossTab.extend(ServicesMixin, {
    dependencies: ['local_storage'],

    _audio: null,

    /**
     * Services get the environment instead of a parent widget.
     *
     * @param {Object} env
     */
    init: function (env) {
        this.env = env;
        this._super();
        deployed = this;
        deployListeners.forEach(function (callback) {
            callback(deployed);
        });
    },
    /**
     * @override
     */
    destroy: function () {
        if (deployed === this) {
            deployed = null;
        }
        this._super.apply(this, arguments);
    },
    /**
     * A service has no parent to ask: service calls go straight to the
     * services of its environment.
     *
     * @param {OdooEvent} ev
     */
    _trigger_up: function (ev) {
        if (ev.name !== 'call_service') {
            return;
        }
        var request = ev.data;
        var args = request.args || [];
        if (request.service === 'ajax' && request.method === 'rpc') {
            args = args.concat(ev.target);  // the ajax service wants the caller too
        }
        var service = this.env.services[request.service];
        request.callback(service[request.method].apply(service, args));
    },
    /**
     * Services are started by the service provider.
     */
    start: function () {},

    //--------------------------------------------------------------------------
    // Public
    //--------------------------------------------------------------------------

    /**
     * Shows a notification to the user: a desktop notification when allowed
     * (from the master tab only, so once per browser), else one in the page.
     *
     * @param {string} title
     * @param {string} content
     * @param {function} [callback] called when the user clicks the notification
     */
    sendNotification: function (title, content, callback) {
        var allowed = window.Notification && window.Notification.permission === 'granted';
        if (!allowed) {
            this.do_notify(title, content);
            if (this.isMasterTab()) {
                this._beep();
            }
            return;
        }
        if (!this.isMasterTab()) {
            return;
        }
        try {
            this._sendNativeNotification(title, content, callback);
        } catch (error) {
            // Some mobile browsers only show notifications through a service worker.
            if (String(error && error.message).indexOf('ServiceWorkerRegistration') === -1) {
                throw error;
            }
            this.do_notify(title, content);
            this._beep();
        }
    },
    /**
     * Registers a handler of the 'notification' event.
     *
     * @param {Object} owner
     * @param {function} handler called with [[channel, message], ...]
     */
    onNotification: function () {
        this.on.apply(this, ['notification'].concat(Array.prototype.slice.call(arguments)));
    },

    //--------------------------------------------------------------------------
    // Private
    //--------------------------------------------------------------------------

    /**
     * @private
     */
    _beep: function () {
        if (typeof window.Audio === 'undefined') {
            return;
        }
        if (!this._audio) {
            this._audio = new window.Audio();
            var ogg = this._audio.canPlayType('audio/ogg; codecs=vorbis');
            this._audio.src = session.url('/mail/static/src/audio/ting' + (ogg ? '.ogg' : '.mp3'));
        }
        Promise.resolve(this._audio.play()).catch(function () {});
    },
    /**
     * @private
     */
    _sendNativeNotification: function (title, content, callback) {
        var notification = new window.Notification(htmlToText(title), {
            body: htmlToText(content),
            icon: '/mail/static/src/img/odoobot_transparent.png',
        });
        notification.onclick = function () {
            window.focus();
            if (this.cancel) {
                this.cancel();
            } else if (this.close) {
                this.close();
            }
            if (callback) {
                callback();
            }
        };
    },
});

/**
 * Calls back with the page's bus_service instance, now if there is one and
 * each time one is created (used by the legacy `bus.bus` facade).
 *
 * @param {function} callback
 */
BusService.onDeploy = function (callback) {
    deployListeners.push(callback);
    if (deployed) {
        callback(deployed);
    }
};

core.serviceRegistry.add('bus_service', BusService);

return BusService;

});
