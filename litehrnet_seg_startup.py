"""Start-up hook: mmseg's own tools on mmcv-lite.

mmsegmentation imports ``mmcv.ops`` (compiled ops) at import time. Our
package installs a pure-PyTorch ``mmcv.ops`` when it is imported
(:func:`litehrnet_seg.compat.install_mmcv_ops_fallback`), but scripts that
import ``mmseg.models`` before a config's ``custom_imports`` pulls in
``litehrnet_seg`` (mmseg's ``tools/analysis_tools/get_flops.py``,
``tools/misc/print_config.py``, ...) die with ``No module named
'mmcv._ext'``.

This module, activated at interpreter start-up by a ``.pth`` file, adds a
``sys.meta_path`` finder that acts only when ``mmcv.ops`` is imported and
mmcv's compiled ``mmcv._ext`` is absent: it then installs our fallback. It
imports only the standard library, so start-up stays cheap for every
Python process; with full mmcv installed it does nothing.

The fallback lives in ``litehrnet_seg/compat.py``. Importing it as
``litehrnet_seg.compat`` would run ``litehrnet_seg/__init__.py``, which
imports mmseg, which is what is being imported when the finder fires. So
the finder loads ``compat.py`` from the package folder under its real name
``litehrnet_seg.compat`` without running the package ``__init__``; the
later ``import litehrnet_seg`` reuses that very module (one copy of the
fallback, whichever way it was first installed).

Installing the ``.pth`` file:

* ``pip install .`` (a wheel) ships it (see ``setup.py``);
* ``pip install -e .`` (PEP 660) cannot; run
  ``python -m litehrnet_seg_startup --install`` once (tools/setup_env.sh
  does), ``--uninstall`` to remove it.

Set ``LITEHRNET_SEG_STARTUP=0`` to switch the hook off for one process.
"""

import argparse
import importlib
import importlib.abc
import importlib.util
import os
import sys
import sysconfig
import types
from importlib.machinery import ModuleSpec

__all__ = [
    'PTH_NAME',
    'MmcvOpsFallbackFinder',
    'activate',
    'install',
    'main',
    'pth_text',
    'uninstall',
]

# Sorts after setuptools' ``__editable__.*.pth``, so that in an editable
# install this module is importable when our line runs.
PTH_NAME = 'litehrnet_seg_startup.pth'
DISABLE_ENV = 'LITEHRNET_SEG_STARTUP'
_COMPAT = 'litehrnet_seg.compat'


def pth_text() -> str:
    """Content of the ``.pth`` file that activates the hook.

    A stale file (package uninstalled, the ``.pth`` left behind) must not
    print an import error in every Python process, hence the ``find_spec``
    guard.

    Returns:
        str: One ``import`` line, as ``site`` executes it.
    """
    return (
        'import importlib.util; '
        "importlib.util.find_spec('litehrnet_seg_startup') and "
        "__import__('litehrnet_seg_startup').activate()\n"
    )


def _load_compat() -> types.ModuleType | None:
    """``litehrnet_seg.compat``, without running the package ``__init__``.

    Returns:
        ModuleType | None: The module, or None if litehrnet_seg is not
        installed.
    """
    if _COMPAT in sys.modules:
        return sys.modules[_COMPAT]
    if 'litehrnet_seg' in sys.modules:  # package already (being) imported
        return importlib.import_module(_COMPAT)
    package = importlib.util.find_spec('litehrnet_seg')  # does not run it
    if package is None or not package.submodule_search_locations:
        return None
    for folder in package.submodule_search_locations:
        path = os.path.join(folder, 'compat.py')
        if os.path.isfile(path):
            break
    else:
        return None
    spec = importlib.util.spec_from_file_location(_COMPAT, path)
    module = importlib.util.module_from_spec(spec)
    # Registered under its real name: `import litehrnet_seg` reuses it.
    sys.modules[_COMPAT] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_COMPAT]
        raise
    return module


class _FallbackLoader(importlib.abc.Loader):
    """Loads ``mmcv.ops`` as litehrnet_seg's mmcv-lite fallback.

    Args:
        compat (ModuleType): ``litehrnet_seg.compat``.
    """

    def __init__(self, compat: types.ModuleType) -> None:
        self.compat = compat

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        # install_mmcv_ops_fallback registers the module in sys.modules
        # and on mmcv; the import system then finishes the binding.
        self.compat.install_mmcv_ops_fallback()
        return sys.modules[spec.name]

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module is complete when created."""


class MmcvOpsFallbackFinder(importlib.abc.MetaPathFinder):
    """Serves ``mmcv.ops`` from litehrnet_seg when mmcv has no compiled ops.

    Every other import, and ``mmcv.ops`` with full mmcv installed, is left
    to the regular finders.
    """

    def find_spec(
        self,
        fullname: str,
        path=None,
        target: types.ModuleType | None = None,
    ) -> ModuleSpec | None:
        """Find ``mmcv.ops`` on mmcv-lite; decline everything else.

        Args:
            fullname (str): Fully qualified module name.
            path: The parent package's ``__path__`` (unused).
            target (ModuleType, optional): Module being reloaded (unused).

        Returns:
            ModuleSpec | None: A spec loading the fallback, or None.
        """
        if fullname != 'mmcv.ops':
            return None
        # The parent `mmcv` is imported by now, so this is a cheap lookup.
        if importlib.util.find_spec('mmcv._ext') is not None:
            return None  # full mmcv: its own mmcv.ops
        compat = _load_compat()
        if compat is None:
            return None
        return ModuleSpec(fullname, _FallbackLoader(compat))


def activate() -> bool:
    """Install the finder (once) at the front of ``sys.meta_path``.

    Returns:
        bool: True if it was added now; False if it was already active or
        ``LITEHRNET_SEG_STARTUP=0`` switches it off.
    """
    if os.environ.get(DISABLE_ENV, '1') == '0':
        return False
    if any(isinstance(f, MmcvOpsFallbackFinder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, MmcvOpsFallbackFinder())
    return True


def _site_dir(site_dir: str | None) -> str:
    return site_dir or sysconfig.get_paths()['purelib']


def install(site_dir: str | None = None) -> str:
    """Write the ``.pth`` file (idempotent).

    Args:
        site_dir (str, optional): A site-packages folder. Defaults to this
            interpreter's ``purelib`` (the venv's site-packages).

    Returns:
        str: Path of the ``.pth`` file.
    """
    path = os.path.join(_site_dir(site_dir), PTH_NAME)
    text = pth_text()
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == text:
                return path
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def uninstall(site_dir: str | None = None) -> bool:
    """Remove the ``.pth`` file written by :func:`install`.

    Args:
        site_dir (str, optional): As for :func:`install`.

    Returns:
        bool: True if a file was removed.
    """
    path = os.path.join(_site_dir(site_dir), PTH_NAME)
    if not os.path.isfile(path):
        return False
    os.remove(path)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m litehrnet_seg_startup [--install | --uninstall]``.

    Args:
        argv (list[str], optional): Arguments. Defaults to ``sys.argv``.

    Returns:
        int: Exit status.
    """
    parser = argparse.ArgumentParser(
        prog='python -m litehrnet_seg_startup',
        description='Install the start-up hook that lets mmseg tools run '
        'on mmcv-lite. Without an action, print where it is installed.',
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument('--install', action='store_true')
    action.add_argument('--uninstall', action='store_true')
    parser.add_argument(
        '--site-dir', help='site-packages folder (default: purelib)'
    )
    args = parser.parse_args(argv)
    path = os.path.join(_site_dir(args.site_dir), PTH_NAME)
    if args.install:
        print(f'installed {install(args.site_dir)}')
    elif args.uninstall:
        print(('removed ' if uninstall(args.site_dir) else 'no ') + path)
    else:
        state = 'installed' if os.path.isfile(path) else 'not installed'
        print(f'{state}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
