from . import test_bus_model, test_controller, test_presence

__all__ = ['test_bus_model', 'test_controller', 'test_presence']
