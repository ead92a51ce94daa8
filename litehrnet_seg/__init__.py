"""litehrnet_seg: Lite-HRNet segmentation and pose on mmsegmentation.

Importing the package registers its modules into mmsegmentation's
registries (scope ``mmseg``). Configs pull it in with
``custom_imports = dict(imports=['litehrnet_seg'])``.
"""

from .compat import install_mmcv_ops_fallback, register_safe_checkpoint_globals

# Both must run before mmseg is imported (it imports mmcv.ops at import time).
install_mmcv_ops_fallback()
register_safe_checkpoint_globals()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__']
