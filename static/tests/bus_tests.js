/*
 * QUnit tests of the bus wrappers, for Odoo's /web/tests runner
 * (template bus.qunit_suite in views/bus.xml).
 *
 * Each "tab" is a widget in its own mock environment; all tabs share one
 * in-memory storage (a RamStorage behind the local_storage service), which is
 * how a browser's tabs share localStorage. Polls never reach a server: each
 * poll is a promise the test answers (or aborts).
 */
odoo.define('bus.bus_wrapper_tests', function (require) {
'use strict';

var AbstractStorageService = require('web.AbstractStorageService');
var BusService = require('bus.BusService');
var CrossTab = require('bus.CrossTab');
var legacyBus = require('bus.bus');
var RamStorage = require('web.RamStorage');
var testUtils = require('web.test_utils');
var Widget = require('web.Widget');

require('bus.WebClient');
var WebClient = require('web.WebClient');

/** Fast heartbeats and retries, as tests want them. */
var QuickBusService = BusService.extend({
    TAB_HEARTBEAT_PERIOD: 10,
    MASTER_TAB_HEARTBEAT_PERIOD: 5,
    HEARTBEAT_OUT_OF_DATE_PERIOD: 40,
    ERROR_RETRY_DELAY: 100,
    ERROR_RETRY_JITTER: 0,
});

var SharedStorage;
var lastDeployed = null;
BusService.onDeploy(function (service) {
    lastDeployed = service;
});

function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

/** Waits until condition() holds, up to `timeout` ms (timers of a busy machine run late). */
async function waitFor(condition, timeout) {
    var deadline = Date.now() + timeout;
    while (!condition() && Date.now() < deadline) {
        await wait(10);
    }
}

/** A poll the test controls: answer(items), fail(), and abort() as Odoo's ajax does it. */
function controlledPoll(params) {
    var poll = testUtils.makeTestPromise();
    poll.params = params;
    poll.abort = function () {
        poll.reject({message: 'XmlHttpRequestError abort', event: $.Event()});
    };
    poll.answer = function (items) {
        poll.resolve(items);
    };
    poll.fail = function () {
        poll.reject({message: 'XmlHttpRequestError error', event: $.Event()});
    };
    return poll;
}

/**
 * Opens a "tab": a widget with its own bus_service on the shared storage.
 * Returns {parent, widget, polls, received, call}.
 */
async function openTab(name, Service) {
    var tab = {name: name, polls: [], received: []};
    tab.parent = new Widget();
    await testUtils.mock.addMockEnvironment(tab.parent, {
        data: {},
        services: {
            bus_service: Service || QuickBusService,
            local_storage: SharedStorage,
        },
        mockRPC: function (route, args) {
            if (route === '/longpolling/poll') {
                var poll = controlledPoll(args);
                tab.polls.push(poll);
                return poll;
            }
            return this._super.apply(this, arguments);
        },
    });
    tab.service = lastDeployed;
    tab.widget = new Widget(tab.parent);
    await tab.widget.appendTo($('#qunit-fixture'));
    tab.call = function () {
        return tab.widget.call.apply(tab.widget, ['bus_service'].concat(Array.prototype.slice.call(arguments)));
    };
    tab.call('onNotification', tab.widget, function (pairs) {
        tab.received.push.apply(tab.received, pairs.map(function (pair) {
            return pair[0] + ':' + JSON.stringify(pair[1]);
        }));
    });
    tab.lastPoll = function () {
        return tab.polls[tab.polls.length - 1];
    };
    return tab;
}

QUnit.module('bus', {
    beforeEach: function () {
        SharedStorage = AbstractStorageService.extend({storage: new RamStorage()});
    },
}, function () {

    QUnit.module('single tab');

    QUnit.test('answers of the poll become notification events, and polling goes on', async function (assert) {
        assert.expect(5);

        var tab = await openTab('tab');
        tab.call('addChannel', 'news');
        assert.strictEqual(tab.polls.length, 1, 'adding a channel starts polling at once');
        assert.deepEqual(tab.lastPoll().params.channels, ['news']);

        tab.lastPoll().answer([{id: 7, channel: 'news', message: 'hello'}]);
        await testUtils.nextTick();
        tab.lastPoll().answer([{id: 8, channel: 'news', message: {n: 2}}]);
        await testUtils.nextTick();

        assert.deepEqual(tab.received, ['news:"hello"', 'news:{"n":2}']);
        assert.strictEqual(tab.polls.length, 3, 'a new poll follows each answer');
        assert.strictEqual(tab.lastPoll().params.last, 8, 'the next poll asks for what follows the last id');
        tab.parent.destroy();
    });

    QUnit.test('the first poll asks from id 0 and reports the inactivity time', async function (assert) {
        assert.expect(3);

        var tab = await openTab('tab');
        tab.call('addChannel', 'news');
        var params = tab.lastPoll().params;
        assert.strictEqual(params.last, 0);
        assert.strictEqual(typeof params.options.bus_inactivity, 'number');
        assert.ok(params.options.bus_inactivity >= 0);
        tab.parent.destroy();
    });

    QUnit.test('adding or deleting a channel aborts the pending poll and polls again at once', async function (assert) {
        assert.expect(5);

        var tab = await openTab('tab');
        tab.call('addChannel', 'a');
        tab.call('addChannel', 'b');
        await testUtils.nextTick();
        assert.strictEqual(tab.polls.length, 2);
        assert.deepEqual(tab.lastPoll().params.channels, ['a', 'b']);

        tab.call('deleteChannel', 'a');
        await testUtils.nextTick();
        assert.strictEqual(tab.polls.length, 3);
        assert.deepEqual(tab.lastPoll().params.channels, ['b']);

        tab.call('addChannel', 'b');
        await testUtils.nextTick();
        assert.strictEqual(tab.polls.length, 3, 'a channel already there changes nothing');
        tab.parent.destroy();
    });

    QUnit.test('options are sent with the next poll', async function (assert) {
        assert.expect(1);

        var tab = await openTab('tab');
        tab.call('updateOption', 'bus_presence', true);
        tab.call('addChannel', 'news');
        assert.strictEqual(tab.lastPoll().params.options.bus_presence, true);
        tab.parent.destroy();
    });

    QUnit.test('a notification seen twice is delivered once', async function (assert) {
        assert.expect(1);

        var tab = await openTab('tab');
        tab.call('addChannel', 'news');
        tab.lastPoll().answer([{id: 3, channel: 'news', message: 'x'}]);
        await testUtils.nextTick();
        tab.lastPoll().answer([{id: 3, channel: 'news', message: 'x'}, {id: 4, channel: 'news', message: 'y'}]);
        await testUtils.nextTick();
        assert.deepEqual(tab.received, ['news:"x"', 'news:"y"']);
        tab.parent.destroy();
    });

    QUnit.test('a failed poll is retried after ERROR_RETRY_DELAY, without error dialog', async function (assert) {
        assert.expect(2);

        var tab = await openTab('tab');
        tab.call('addChannel', 'news');
        var failedAt = Date.now();
        tab.lastPoll().fail();
        await wait(0);
        assert.strictEqual(tab.polls.length, 1, 'no immediate retry');
        await waitFor(function () { return tab.polls.length === 2; }, 2000);
        assert.ok(tab.polls.length === 2 && Date.now() - failedAt >= 100, 'retried after the delay');
        tab.parent.destroy();
    });

    QUnit.test('stopPolling aborts the poll and forgets the channels', async function (assert) {
        assert.expect(2);

        var tab = await openTab('tab');
        tab.call('addChannel', 'news');
        tab.call('stopPolling');
        await testUtils.nextTick();
        assert.strictEqual(tab.polls.length, 1, 'no poll after stopping');

        tab.call('addChannel', 'sports');
        await testUtils.nextTick();
        assert.deepEqual(tab.lastPoll().params.channels, ['sports'], 'polling again, without the old channels');
        tab.parent.destroy();
    });

    QUnit.module('several tabs');

    QUnit.test('one tab polls; the others get its notifications', async function (assert) {
        assert.expect(6);

        var first = await openTab('first');
        first.call('addChannel', 'news');
        var second = await openTab('second');
        second.call('addChannel', 'news');
        await testUtils.nextTick();

        assert.ok(first.call('isMasterTab'));
        assert.notOk(second.call('isMasterTab'));
        assert.notEqual(first.call('getTabId'), second.call('getTabId'));

        first.lastPoll().answer([{id: 1, channel: 'news', message: 'shared'}]);
        await testUtils.nextTick();

        assert.deepEqual(first.received, ['news:"shared"']);
        assert.deepEqual(second.received, ['news:"shared"']);
        assert.strictEqual(second.polls.length, 0, 'the second tab never polled');
        first.parent.destroy();
        second.parent.destroy();
    });

    QUnit.test("a follower's new channel reaches the master's poll at once", async function (assert) {
        assert.expect(2);

        var first = await openTab('first');
        first.call('addChannel', 'news');
        var second = await openTab('second');
        second.call('addChannel', 'sports');
        await testUtils.nextTick();

        assert.strictEqual(first.polls.length, 2);
        assert.deepEqual(first.lastPoll().params.channels.sort(), ['news', 'sports']);
        first.parent.destroy();
        second.parent.destroy();
    });

    QUnit.test('when the master tab goes away another takes over from the same last id', async function (assert) {
        assert.expect(5);

        var first = await openTab('first');
        var becameMaster = [];
        first.call('addChannel', 'news');
        var second = await openTab('second');
        second.call('on', 'become_master', null, function () { becameMaster.push('second'); });
        second.call('addChannel', 'news');
        first.lastPoll().answer([{id: 41, channel: 'news', message: 'before'}]);
        await testUtils.nextTick();

        first.call('_onUnload');
        await testUtils.nextTick();

        assert.ok(second.call('isMasterTab'));
        assert.deepEqual(becameMaster, ['second']);
        assert.strictEqual(second.polls.length, 1);
        assert.strictEqual(second.lastPoll().params.last, 41, 'nothing after id 41 is lost');
        second.lastPoll().answer([{id: 42, channel: 'news', message: 'after'}]);
        await testUtils.nextTick();
        assert.deepEqual(second.received, ['news:"before"', 'news:"after"']);
        first.parent.destroy();
        second.parent.destroy();
    });

    QUnit.test('a master whose heartbeats stopped is replaced', async function (assert) {
        assert.expect(4);

        var first = await openTab('first');
        first.call('addChannel', 'news');
        var second = await openTab('second');
        second.call('addChannel', 'news');
        assert.notOk(second.call('isMasterTab'));

        // The master tab dies: no more heartbeats, and no goodbye.
        var core = first.service._core;
        clearTimeout(core.heartbeatTimer);
        core.heartbeat = function () {};
        await waitFor(function () { return second.call('isMasterTab'); }, 2000);

        assert.ok(second.call('isMasterTab'), 'the follower took over');
        assert.strictEqual(second.polls.length, 1);
        assert.deepEqual(second.lastPoll().params.channels, ['news']);
        first.parent.destroy();
        second.parent.destroy();
    });

    QUnit.module('other APIs');

    QUnit.test('the legacy bus.bus API adds channels and delivers notifications', async function (assert) {
        assert.expect(3);

        var tab = await openTab('tab');
        var legacyReceived = [];
        legacyBus.bus.on('notification', null, function (pairs) {
            legacyReceived.push.apply(legacyReceived, pairs);
        });
        legacyBus.bus.add_channel('legacy');
        legacyBus.bus.start_polling();
        assert.deepEqual(tab.lastPoll().params.channels, ['legacy']);

        tab.lastPoll().answer([{id: 5, channel: 'legacy', message: 'old style'}]);
        await testUtils.nextTick();
        assert.deepEqual(legacyReceived, [['legacy', 'old style']]);
        assert.deepEqual(tab.received, ['legacy:"old style"']);
        legacyBus.bus.off('notification');
        tab.parent.destroy();
    });

    QUnit.test('bundle_changed with a new version of a loaded bundle shows the out-of-date notice', function (assert) {
        assert.expect(2);

        var shown = [];
        var client = {
            _assets: {'web.assets_backend': 'v1'},
            _displayBundleChangedNotification: function () { shown.push('notice'); },
        };
        var onNotification = WebClient.prototype._onNotification;
        onNotification.call(client, [[['db', 'bundle_changed'], ['web.assets_backend', 'v1']]]);
        onNotification.call(client, [[['db', 'bundle_changed'], ['web.assets_frontend', 'v2']]]);
        assert.deepEqual(shown, [], 'same version, or a bundle this page did not load');
        onNotification.call(client, [[['db', 'other'], 'x'], [['db', 'bundle_changed'], ['web.assets_backend', 'v2']]]);
        assert.deepEqual(shown, ['notice']);
    });
});

});
