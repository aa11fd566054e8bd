/*
 * Tour `bundle_changed_notification` (loaded with web.assets_tests): a
 * `bundle_changed` notification announcing a new version of the backend
 * bundle makes the web client show its "Refresh" notice.
 */
odoo.define('bus.bundle_changed_tour', function (require) {
'use strict';

var tour = require('web_tour.tour');

tour.register('bundle_changed_notification', {
    test: true,
    url: '/web',
}, [{
    content: 'the server announces a new version of web.assets_backend',
    trigger: '.o_web_client',
    run: function () {
        var webClient = odoo.__DEBUG__.services['web.web_client'];
        var usualDelay = webClient._getBundleNotificationDelay;
        webClient._getBundleNotificationDelay = function () { return 0; };
        webClient.call('bus_service', 'trigger', 'notification', [
            [['any_db', 'bundle_changed'], ['web.assets_backend', 'a-new-version']],
        ]);
        webClient._getBundleNotificationDelay = usualDelay;
    },
}, {
    content: 'the user is told to refresh the page',
    trigger: '.o_notification_title:contains(Refresh)',
}]);

});
