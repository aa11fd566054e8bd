from . import test_assets, test_bus_model, test_controller, test_fastpath, test_js, test_presence

__all__ = ['test_assets', 'test_bus_model', 'test_controller', 'test_fastpath', 'test_js', 'test_presence']
