"""Odoo 14 `bus` addon: Odoo adapters around the framework-free core in `imbus/`."""

from . import controllers, fastpath, models

__all__ = ['controllers', 'fastpath', 'models']
