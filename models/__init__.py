from . import bus, bus_presence, res_partner, res_users

__all__ = ['bus', 'bus_presence', 'res_partner', 'res_users']
