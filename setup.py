"""Build the Cython extensions of medfeat.

Every ``src/medfeat/_kernels/cython/*.pyx`` becomes an extension module, compiled against NumPy's headers,
with OpenMP when the compiler supports it (checked by compiling a tiny program). Environment knobs:

- ``MEDFEAT_NO_OPENMP=1``: build without OpenMP.
- ``MEDFEAT_CFLAGS``: extra compiler flags, e.g. ``-march=native`` for a build that only runs here.
- ``MEDFEAT_EXT=_density_cy``: build only these modules (development convenience).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
PYX_DIR = os.path.join("src", "medfeat", "_kernels", "cython")


def _compiler_has_openmp():
    if os.environ.get("MEDFEAT_NO_OPENMP"):
        return False
    if sys.platform == "win32":
        return True  # MSVC: /openmp is always there
    cc = os.environ.get("CC", "cc")
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as fh:
            fh.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        res = subprocess.run(
            [cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extensions():
    openmp = _compiler_has_openmp()
    if sys.platform == "win32":
        cflags, lflags = (["/O2", "/openmp"] if openmp else ["/O2"]), []
    else:
        cflags = ["-O3", "-fno-math-errno"] + (["-fopenmp"] if openmp else [])
        lflags = ["-fopenmp"] if openmp else []
    cflags += os.environ.get("MEDFEAT_CFLAGS", "").split()
    only = {s for s in os.environ.get("MEDFEAT_EXT", "").split(",") if s}
    exts = []
    for path in sorted(glob.glob(os.path.join(PYX_DIR, "*.pyx"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if only and name not in only:
            continue
        exts.append(
            Extension(
                f"medfeat._kernels.cython.{name}",
                [path],
                include_dirs=[np.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=cflags,
                extra_link_args=lflags,
            )
        )
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
        },
    )


setup(ext_modules=_extensions())
