"""numba's threading layers for parallel kernels. pip's `tbb` wheel puts libtbb.so.12 in the
environment's lib/, where the dynamic linker does not look; loading it here first (by its
path, into the global namespace) lets numba's `tbb` layer find it without the user setting
LD_LIBRARY_PATH. `start()` launches the threads and names the layer, or says which layers
failed and why."""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from ...errors import HpcadError

_LAYERS = ("omp", "tbb", "workqueue")


def preload_tbb() -> str | None:
    """Load the environment's libtbb if there is one; returns its path."""
    for directory in (os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")):
        for path in sorted(glob.glob(os.path.join(directory, "libtbb.so.*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return path
            except OSError:
                continue
    return None


def start() -> str:
    """Launch numba's worker threads (once); the name of the layer that runs them."""
    from numba.np.ufunc import parallel
    try:
        parallel._launch_threads()
    except (ValueError, ImportError, OSError) as e:
        asked = os.environ.get("NUMBA_THREADING_LAYER", "default")
        raise HpcadError(
            f"no numba threading layer could start for a parallel kernel (NUMBA_THREADING_LAYER"
            f"={asked}; layers: {', '.join(_LAYERS)}): {e}. Install `tbb` (pip) or an OpenMP "
            f"runtime, or set NUMBA_THREADING_LAYER=workqueue") from None
    import numba
    return numba.threading_layer()


def available_layers() -> dict[str, str]:
    """Which layers can load in this environment: name -> 'ok' or the reason it cannot."""
    import importlib
    result = {}
    for name, module in (("omp", "numba.np.ufunc.omppool"), ("tbb", "numba.np.ufunc.tbbpool"),
                         ("workqueue", "numba.np.ufunc.workqueue")):
        try:
            importlib.import_module(module)
            result[name] = "ok"
        except (ImportError, OSError) as e:
            result[name] = str(e)
    return result

