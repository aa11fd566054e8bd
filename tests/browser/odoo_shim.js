/*
 * Just enough of Odoo 14's legacy JS runtime to load the real bus wrappers
 * (static/src/js/*.js, unchanged) on a plain page, for the browser tests:
 * odoo.define/require, web.Class, web.mixins, web.Bus, web.ServicesMixin,
 * web.core (service registry), web.session, and services `ajax`,
 * `local_storage` (window.localStorage, storage events from other tabs) and
 * `notification`. Written for these tests; it is not Odoo's code.
 */
(function () {
    'use strict';

    const modules = {};

    function require(name) {
        if (!(name in modules)) {
            throw new Error('odoo shim: module not defined (yet): ' + name);
        }
        return modules[name];
    }

    window.odoo = {
        define: function (name, deps, factory) {
            modules[name] = (factory || deps)(require);
        },
        require: require,
    };

    // ------------------------------------------------------------ web.Class

    function withSuper(fn, parentMethod) {
        return function () {
            const saved = this._super;
            this._super = parentMethod || function () {};
            try {
                return fn.apply(this, arguments);
            } finally {
                this._super = saved;
            }
        };
    }

    function addMembers(proto, props, base) {
        for (const name of Object.keys(props)) {
            const value = props[name];
            proto[name] = typeof value === 'function' ? withSuper(value, base[name]) : value;
        }
    }

    function Class() {}
    Class.extend = function () {
        const Parent = this;
        const props = Object.assign({}, ...arguments);
        function Child() {
            if (typeof this.init === 'function') {
                this.init.apply(this, arguments);
            }
        }
        Child.prototype = Object.create(Parent.prototype);
        Child.prototype.constructor = Child;
        addMembers(Child.prototype, props, Parent.prototype);
        Child.extend = Class.extend;
        Child.include = Class.include;
        return Child;
    };
    Class.include = function (props) {
        const proto = this.prototype;
        const current = {};
        Object.keys(props).forEach((name) => { current[name] = proto[name]; });
        addMembers(proto, props, current);
    };
    odoo.define('web.Class', () => Class);

    // ------------------------------------------------------------ web.mixins

    const EventDispatcherMixin = {
        init: function () {
            this._shimHandlers = {};
            this._shimChildren = [];
            this._shimParent = null;
            this._shimDestroyed = false;
        },
        setParent: function (parent) {
            this._shimParent = parent || null;
            if (parent && parent._shimChildren) {
                parent._shimChildren.push(this);
            }
        },
        getParent: function () {
            return this._shimParent;
        },
        isDestroyed: function () {
            return this._shimDestroyed;
        },
        on: function (events, owner, handler) {
            events.split(/\s+/).forEach((name) => {
                (this._shimHandlers[name] = this._shimHandlers[name] || []).push({owner: owner, handler: handler});
            });
            return this;
        },
        off: function (events, owner, handler) {
            events.split(/\s+/).forEach((name) => {
                this._shimHandlers[name] = (this._shimHandlers[name] || []).filter((entry) => (
                    (owner !== undefined && owner !== null && entry.owner !== owner) ||
                    (handler && entry.handler !== handler)
                ));
            });
            return this;
        },
        trigger: function (name) {
            const args = Array.prototype.slice.call(arguments, 1);
            (this._shimHandlers[name] || []).slice().forEach((entry) => {
                entry.handler.apply(entry.owner, args);
            });
            return this;
        },
        trigger_up: function (name, data) {
            const event = {name: name, data: data || {}, target: this};
            this._trigger_up(event);
            return event;
        },
        _trigger_up: function (event) {
            if (this._shimParent && this._shimParent._trigger_up) {
                this._shimParent._trigger_up(event);
            }
        },
        destroy: function () {
            this._shimChildren.forEach((child) => child.destroy());
            this._shimHandlers = {};
            this._shimDestroyed = true;
        },
    };
    odoo.define('web.mixins', () => ({EventDispatcherMixin: EventDispatcherMixin}));

    const Bus = Class.extend(EventDispatcherMixin, {
        init: function (parent) {
            EventDispatcherMixin.init.call(this);
            this.setParent(parent);
        },
    });
    odoo.define('web.Bus', () => Bus);

    // ------------------------------------------------------------ services

    const ServicesMixin = {
        call: function (service, method) {
            let result;
            this.trigger_up('call_service', {
                service: service,
                method: method,
                args: Array.prototype.slice.call(arguments, 2),
                callback: (value) => { result = value; },
            });
            return result;
        },
        _rpc: function (params, options) {
            return this.call('ajax', 'rpc', params.route, params.params, options, this);
        },
        do_notify: function (title, message) {
            return this.call('notification', 'notify', {title: title, message: message});
        },
    };
    odoo.define('web.ServicesMixin', () => ServicesMixin);

    const serviceRegistry = {
        map: {},
        add: function (name, Service) {
            this.map[name] = Service;
            return this;
        },
        get: function (name) {
            return this.map[name];
        },
    };
    odoo.define('web.core', () => ({_t: (text) => text, bus: new Bus(), serviceRegistry: serviceRegistry}));
    odoo.define('web.session', () => ({origin: window.location.origin, url: (path) => path}));

    /** Odoo's ajax rpc: a promise with abort(); an abort rejects with Odoo's message. */
    function rpc(route, params) {
        const controller = new AbortController();
        const body = JSON.stringify({jsonrpc: '2.0', method: 'call', params: params, id: Date.now()});
        const promise = fetch(route, {
            method: 'POST', body: body, signal: controller.signal,
            headers: {'Content-Type': 'application/json'},
        }).then((response) => response.json()).then((answer) => {
            if (answer.error) {
                throw {message: answer.error, event: new Event('rpc_error', {cancelable: true})};
            }
            return answer.result;
        }, (error) => {
            const message = error.name === 'AbortError' ? 'XmlHttpRequestError abort' : 'XmlHttpRequestError ' + error;
            throw {message: message, event: new Event('rpc_error', {cancelable: true})};
        });
        promise.abort = () => controller.abort();
        return promise;
    }

    /** Odoo's local_storage service on window.localStorage. */
    function localStorageService() {
        const storage = Object.assign({}, EventDispatcherMixin);
        storage.init();
        window.addEventListener('storage', (event) => {
            if (event.storageArea === window.localStorage) {
                storage.trigger('storage', {key: event.key, newValue: event.newValue});
            }
        });
        return {
            getItem: (key, fallback) => {
                const text = window.localStorage.getItem(key);
                return text ? JSON.parse(text) : fallback;
            },
            setItem: (key, value) => window.localStorage.setItem(key, JSON.stringify(value)),
            removeItem: (key) => window.localStorage.removeItem(key),
            onStorage: (owner, handler) => storage.on('storage', owner, handler),
        };
    }

    /** Deploys the registered services (dependencies first) in a fresh env. */
    window.odooShim = {
        notifications: [],
        deployServices: function () {
            const env = {services: {}};
            env.services.ajax = {rpc: rpc};
            env.services.local_storage = localStorageService();
            env.services.notification = {notify: (params) => { this.notifications.push(params); }};
            Object.keys(serviceRegistry.map).forEach((name) => {
                env.services[name] = new serviceRegistry.map[name](env);
            });
            return env;
        },
    };
})();
