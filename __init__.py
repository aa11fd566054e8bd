"""Odoo 14 `bus` addon: Odoo adapters around the framework-free core in `imbus/`."""

from . import controllers, models

__all__ = ['controllers', 'models']
