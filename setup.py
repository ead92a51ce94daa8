"""Install litehrnet_seg.

mmcv comes as ``mmcv-lite`` by default (pure Python; our models need no
compiled ops). To use an already installed full mmcv instead, install with
``LITEHRNET_SEG_MMCV=full pip install -e .``; then pip requires ``mmcv``
and leaves the compiled build alone.

Install torch yourself first (pinned to the build you want, e.g.
``pip install torch==2.13.0`` for the CPU wheel): an unpinned torch
requirement would make pip fetch the newest CUDA build.
"""

import os
import os.path as osp

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

STARTUP = 'litehrnet_seg_startup'  # top-level module, see its docstring

MMCV_SPEC = '>=2.0.0rc4,<2.2.0'  # what mmsegmentation 1.2.2 accepts


def read_version() -> str:
    namespace = {}
    with open(osp.join('litehrnet_seg', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def mmcv_requirement() -> str:
    flavour = os.environ.get('LITEHRNET_SEG_MMCV', 'lite')
    if flavour not in ('lite', 'full'):
        raise ValueError(
            f"LITEHRNET_SEG_MMCV must be 'lite' or 'full', got {flavour!r}"
        )
    return ('mmcv-lite' if flavour == 'lite' else 'mmcv') + MMCV_SPEC


def startup_pth() -> tuple[str, str]:
    """(file name, text) of the .pth that activates the start-up hook."""
    namespace = {}
    with open(f'{STARTUP}.py') as f:  # stdlib-only module
        exec(f.read(), namespace)
    return namespace['PTH_NAME'], namespace['pth_text']()


class BuildPyWithStartupPth(build_py):
    """build_py that also ships the start-up hook's .pth in the wheel.

    It lands in site-packages with a regular ``pip install .``; editable
    installs (PEP 660) do not ship it: run
    ``python -m litehrnet_seg_startup --install`` (tools/setup_env.sh does).
    """

    def run(self) -> None:
        super().run()
        name, text = startup_pth()
        with open(os.path.join(self.build_lib, name), 'w') as f:
            f.write(text)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = super().get_outputs(include_bytecode)
        return [*outputs, os.path.join(self.build_lib, startup_pth()[0])]


with open('README.md', encoding='utf-8') as f:
    long_description = f.read()

DEPLOY = ['onnx>=1.16', 'onnxscript>=0.3', 'onnxruntime>=1.18']

setup(
    name='litehrnet_seg',
    version=read_version(),
    description='Lite-HRNet for semantic segmentation (and pose) on '
    'mmsegmentation 1.x',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    py_modules=[STARTUP],
    cmdclass={'build_py': BuildPyWithStartupPth},
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10.0,<0.11',
        mmcv_requirement(),
        'mmsegmentation==1.2.2',
        # mmseg.utils imports its CLIP tokenizer unconditionally.
        'ftfy',
        'regex',
        'cityscapesscripts>=2.2',
        'pycocotools',  # COCO keypoint AP for the pose models
        'scipy',  # MPII head boxes (.mat)
        'opencv-python',
        'numpy',
        'tqdm',  # progress bars (dataset checks, inference CLI)
        'Pillow',  # image decoding checks
        # mmengine 0.10 resolves `mmseg::` config paths with pkg_resources,
        # which setuptools >= 81 no longer ships.
        'setuptools<81',
    ],
    extras_require={
        # ONNX export (torch.export-based exporter) and onnxruntime checks.
        'deploy': DEPLOY,
        # pytest-xdist: the suite runs one worker per core (pyproject.toml).
        'tests': ['pytest>=7', 'pytest-xdist>=3.5', 'ruff>=0.5', *DEPLOY],
    },
    entry_points={
        'console_scripts': [
            # Same as python tools/inference.py (images, folders, videos;
            # seg and pose).
            'litehrnet-infer=litehrnet_seg.apis.cli:main',
        ],
    },
    zip_safe=False,
)
