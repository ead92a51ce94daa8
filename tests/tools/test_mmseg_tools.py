"""mmseg's own tools on mmcv-lite, through the start-up hook.

Scripts that import ``mmseg.models`` before a config's ``custom_imports``
used to die with ``No module named 'mmcv._ext'`` on mmcv-lite. The
``litehrnet_seg_startup`` hook (a ``.pth`` file) installs our
``mmcv.ops`` fallback the first time ``mmcv.ops`` is imported.

The tool runs use a fresh interpreter that processes a ``.pth`` written by
``litehrnet_seg_startup.install`` into a temporary site folder, so they
test the hook whether or not this environment has it installed; one more
test runs a tool exactly as a user would, with the environment's own hook.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
from importlib.machinery import ModuleSpec
from pathlib import Path

import mmcv
import mmseg
import pytest

import litehrnet_seg_startup as startup
from litehrnet_seg import compat

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(mmseg.__file__).parent / '.mim' / 'tools'
CONFIG = (
    ROOT
    / 'configs'
    / 'litehrnet'
    / 'fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py'
)
HAS_COMPILED_OPS = importlib.util.find_spec('mmcv._ext') is not None

needs_tools = pytest.mark.skipif(
    not TOOLS.is_dir(),
    reason=f'mmseg tools folder not installed ({TOOLS})',
)
needs_lite = pytest.mark.skipif(
    HAS_COMPILED_OPS,
    reason='full mmcv with compiled ops is installed: the hook does nothing',
)

# Runs argv[2:] as a script after processing the .pth files of argv[1], as
# `site` does for site-packages at start-up.
BOOT = (
    'import runpy, site, sys; site.addsitedir(sys.argv[1]); '
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    # Importable without reinstalling the package (the repository checkout).
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(ROOT), env.get('PYTHONPATH')) if p
    )
    env.pop(startup.DISABLE_ENV, None)
    env.update(extra)
    return env


def _run(args: list, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def hook_site(tmp_path) -> Path:
    """A site folder holding the hook's .pth, as ``--install`` writes it."""
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    startup.install(str(site_dir))
    return site_dir


def run_tool(script: Path, *args, site_dir: Path, cwd: Path, **env: str):
    return _run(['-c', BOOT, site_dir, script, *args], cwd, **env)


def _fail_message(proc: subprocess.CompletedProcess) -> str:
    out, err = proc.stdout[-2000:], proc.stderr[-3000:]
    return f'exit {proc.returncode}\n{out}\n{err}'


# --------------------------------------------------------------------------
# mmseg's tools
# --------------------------------------------------------------------------


@pytest.mark.slow
@needs_tools
def test_print_config_builds_the_model(hook_site, tmp_path):
    """misc/print_config.py imports mmseg.apis (hence mmcv.ops) first."""
    proc = run_tool(
        TOOLS / 'misc' / 'print_config.py',
        CONFIG,
        '--graph',
        site_dir=hook_site,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, _fail_message(proc)
    assert "type='LiteHRNet'" in proc.stdout
    graph = proc.stdout.split('Model graph:\n', 1)[1]
    assert graph.startswith('EncoderDecoder(')
    assert '(backbone): LiteHRNet(' in graph
    assert (
        (tmp_path / 'example-graph.txt')
        .read_text()
        .startswith('EncoderDecoder(')
    )


@pytest.mark.slow
@needs_tools
def test_get_flops_builds_and_runs_the_model(hook_site, tmp_path):
    """analysis_tools/get_flops.py gets past the mmcv.ops import, builds our
    model and runs it; then mmseg 1.2.2's script stops on its own bug with
    mmengine >= 0.7.3 (it passes both ``input_shape`` and ``inputs``;
    mmseg issue #3241, fixed upstream after 1.2.2 by PR #3551). Our
    tools/analysis/get_flops.py is the working FLOPs counter.

    When a fixed mmseg is installed this asserts the full report instead.
    """
    proc = run_tool(
        TOOLS / 'analysis_tools' / 'get_flops.py',
        CONFIG,
        '--shape',
        '128',
        '256',
        site_dir=hook_site,
        cwd=tmp_path,
    )
    assert 'mmcv._ext' not in proc.stderr, _fail_message(proc)
    upstream_bug = '"input_shape" and "inputs" cannot be both set'
    if upstream_bug in proc.stderr:
        assert proc.returncode != 0
        # The error comes from the FLOP counter, i.e. after model building.
        assert 'get_model_complexity_info' in proc.stderr
        return
    assert proc.returncode == 0, _fail_message(proc)
    assert 'Input shape: (128, 256)' in proc.stdout
    assert 'Flops:' in proc.stdout and 'Params:' in proc.stdout


@pytest.mark.slow
@needs_tools
@needs_lite
def test_tools_fail_without_the_hook(hook_site, tmp_path):
    """The control: with the hook switched off the same run still fails
    (which is what the tests above guard against)."""
    proc = run_tool(
        TOOLS / 'misc' / 'print_config.py',
        CONFIG,
        site_dir=hook_site,
        cwd=tmp_path,
        **{startup.DISABLE_ENV: '0'},
    )
    assert proc.returncode != 0
    assert "No module named 'mmcv._ext'" in proc.stderr


@pytest.mark.slow
@needs_tools
def test_print_config_with_the_installed_hook(tmp_path):
    """Exactly as a user runs it: plain ``python tool.py``, with the hook
    that tools/setup_env.sh installs into this environment."""
    pth = Path(sysconfig.get_paths()['purelib']) / startup.PTH_NAME
    if not pth.is_file():
        pytest.skip(
            f'start-up hook not installed in this environment ({pth}); '
            'run `python -m litehrnet_seg_startup --install`'
        )
    env = dict(os.environ)
    env.pop(startup.DISABLE_ENV, None)
    env.pop('PYTHONPATH', None)  # the installed package only
    proc = subprocess.run(
        [sys.executable, str(TOOLS / 'misc' / 'print_config.py'), CONFIG],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, _fail_message(proc)
    assert "type='LiteHRNet'" in proc.stdout


# --------------------------------------------------------------------------
# The finder
# --------------------------------------------------------------------------


@pytest.fixture
def ext_present(monkeypatch):
    """Controls what ``importlib.util.find_spec('mmcv._ext')`` answers."""
    real_find_spec = importlib.util.find_spec

    def set_present(present: bool) -> None:
        def find_spec(name, package=None):
            if name == 'mmcv._ext':
                return ModuleSpec(name, None) if present else None
            return real_find_spec(name, package)

        monkeypatch.setattr(importlib.util, 'find_spec', find_spec)

    return set_present


@pytest.fixture
def fresh_mmcv_ops(monkeypatch):
    """Forget ``mmcv.ops`` for one test (restored afterwards)."""
    monkeypatch.delitem(sys.modules, 'mmcv.ops', raising=False)
    monkeypatch.delattr(mmcv, 'ops', raising=False)
    finder = startup.MmcvOpsFallbackFinder()
    monkeypatch.setattr(sys, 'meta_path', [finder, *sys.meta_path])
    return finder


def test_finder_installs_fallback_when_ext_missing(
    ext_present, fresh_mmcv_ops
):
    ext_present(False)
    ops = importlib.import_module('mmcv.ops')
    assert isinstance(ops, compat._LiteOpsModule)  # the package's compat
    assert sys.modules['mmcv.ops'] is ops
    assert mmcv.ops is ops
    assert ops.sigmoid_focal_loss is compat.sigmoid_focal_loss
    assert ops.__spec__.name == 'mmcv.ops'
    assert not hasattr(ops, '__path__')  # still not a package


def test_finder_does_nothing_with_compiled_ops(ext_present, fresh_mmcv_ops):
    ext_present(True)
    assert fresh_mmcv_ops.find_spec('mmcv.ops', mmcv.__path__) is None
    assert 'mmcv.ops' not in sys.modules


def test_finder_ignores_other_modules(ext_present):
    ext_present(False)
    finder = startup.MmcvOpsFallbackFinder()
    for name in ('mmcv', 'mmcv._ext', 'mmcv.ops.nms', 'mmseg.models', 'ops'):
        assert finder.find_spec(name, None) is None


def test_activate_is_idempotent_and_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    monkeypatch.delenv(startup.DISABLE_ENV, raising=False)
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if not isinstance(f, startup.MmcvOpsFallbackFinder)
    ]
    monkeypatch.setenv(startup.DISABLE_ENV, '0')
    assert startup.activate() is False
    monkeypatch.delenv(startup.DISABLE_ENV)
    assert startup.activate() is True
    assert startup.activate() is False
    finders = [
        f
        for f in sys.meta_path
        if isinstance(f, startup.MmcvOpsFallbackFinder)
    ]
    assert len(finders) == 1 and sys.meta_path[0] is finders[0]


def test_start_up_imports_nothing_heavy(tmp_path):
    """The hook runs in every Python process: it must not import torch,
    mmcv, mmseg or our package."""
    code = (
        'import sys, litehrnet_seg_startup as s\n'
        # CI's venv activates it at start-up (.pth): then False.
        's.activate()\n'
        'assert isinstance(sys.meta_path[0], s.MmcvOpsFallbackFinder)\n'
        "heavy = {'torch', 'numpy', 'mmcv', 'mmengine', 'mmseg'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy\n"
        "             or m.startswith('litehrnet_seg.')\n"
        "             or m == 'litehrnet_seg'))\n"
    )
    proc = _run(['-c', code], tmp_path)
    assert proc.returncode == 0, _fail_message(proc)
    assert proc.stdout.strip() == '[]'


@pytest.mark.slow
@needs_lite
def test_mmseg_imported_first_gets_the_package_fallback(tmp_path):
    """A fresh process importing mmseg before litehrnet_seg: the finder
    installs the fallback; ``import litehrnet_seg`` then reuses the same
    compat module (one fallback, one set of ops)."""
    code = (
        'import sys, litehrnet_seg_startup as s\n'
        # CI's venv activates it at start-up (.pth): then False.
        's.activate()\n'
        'assert isinstance(sys.meta_path[0], s.MmcvOpsFallbackFinder)\n'
        'import mmseg.models\n'
        'from mmseg.models.losses import focal_loss\n'
        "assert 'litehrnet_seg' not in sys.modules\n"
        'import litehrnet_seg\n'
        'from litehrnet_seg import compat\n'
        "assert isinstance(sys.modules['mmcv.ops'], compat._LiteOpsModule)\n"
        'assert focal_loss._sigmoid_focal_loss is compat.sigmoid_focal_loss\n'
        'assert compat.install_mmcv_ops_fallback() is False\n'
        "print('ok')\n"
    )
    proc = _run(['-c', code], tmp_path)
    assert proc.returncode == 0, _fail_message(proc)
    assert proc.stdout.strip() == 'ok'


# --------------------------------------------------------------------------
# The .pth file
# --------------------------------------------------------------------------


def test_install_and_uninstall_are_idempotent(tmp_path):
    path = Path(startup.install(str(tmp_path)))
    assert path == tmp_path / startup.PTH_NAME
    assert path.read_text() == startup.pth_text()
    mtime = path.stat().st_mtime_ns
    assert startup.install(str(tmp_path)) == str(path)
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    path.write_text('import stale\n')
    startup.install(str(tmp_path))
    assert path.read_text() == startup.pth_text()  # outdated: replaced
    assert startup.uninstall(str(tmp_path)) is True
    assert not path.exists()
    assert startup.uninstall(str(tmp_path)) is False


def test_module_command_line(tmp_path):
    args = ['-m', 'litehrnet_seg_startup', '--site-dir', tmp_path]
    proc = _run([*args, '--install'], tmp_path)
    assert proc.returncode == 0, _fail_message(proc)
    assert (tmp_path / startup.PTH_NAME).is_file()
    assert 'installed' in _run(args, tmp_path).stdout
    proc = _run([*args, '--uninstall'], tmp_path)
    assert proc.returncode == 0 and 'removed' in proc.stdout
    assert 'not installed' in _run(args, tmp_path).stdout


def test_pth_activates_the_hook_and_a_stale_one_is_silent(hook_site):
    probe = (
        'import site, sys; site.addsitedir(sys.argv[1]); '
        "print(any(type(f).__name__ == 'MmcvOpsFallbackFinder' "
        'for f in sys.meta_path))'
    )
    proc = _run(['-c', probe, hook_site], hook_site)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    assert proc.stdout.strip() == 'True'
    # Package gone, .pth left behind: -S hides site-packages (and the
    # editable finder), the cwd does not hold the module.
    empty = hook_site / 'elsewhere'
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, '-S', '-c', probe, str(hook_site)],
        cwd=empty,
        env={'PATH': os.environ.get('PATH', '')},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    assert proc.stdout.strip() == 'False'
