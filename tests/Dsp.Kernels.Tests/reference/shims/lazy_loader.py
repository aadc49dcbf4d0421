# Minimal stand-in for the lazy_loader package (test-material generation only): resolves the names a
# package's .pyi stub lists by importing the submodule that defines them on first access.
import ast, importlib, os

def attach_stub(package_name, filename):
    stub = os.path.splitext(filename)[0] + ".pyi"
    with open(stub) as f:
        tree = ast.parse(f.read())
    where = {}
    submodules = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if node.module is None:
                    submodules.add(alias.name)
                else:
                    where[alias.asname or alias.name] = (node.module, alias.name)
    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(package_name + "." + name)
        if name in where:
            mod, attr = where[name]
            return getattr(importlib.import_module(package_name + "." + mod), attr)
        raise AttributeError(name)
    names = sorted(set(where) | submodules)
    return __getattr__, lambda: names, names

def load(name, **kwargs):
    import sys
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        from unittest import mock
        return mock.MagicMock()
