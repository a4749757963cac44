#!/usr/bin/env bash
# Builds the CPU extensions of implicit 0.7.3 (github.com/benfred/implicit, tag v0.7.3, commit 8a95dbe) in place
# from a source tree, with Debian's packages only (no PyPI): the build used for the implicit rows of
# benchmarks/compare.sh and benchmarks/time_to_accuracy.sh (docs/performance.md, "implicit").
#
#   benchmarks/build_implicit.sh SRC_DIR [BUILD_DIR]
#   # SRC_DIR: an extracted v0.7.3 tree, e.g.  git archive v0.7.3 | tar -x -C /tmp/implicit-src
#   # then:    IMPLICIT_PATH=SRC_DIR benchmarks/compare.sh
#
# implicit's own build uses scikit-build and CMake from PyPI; here Cython cythonizes the six CPU modules
# (implicit/__init__.py imports them all) with -O3 -fopenmp. Debian's setuptools 66 rejects implicit's
# pyproject.toml (`license = "MIT"`), so the setup script runs from BUILD_DIR, outside the tree.
set -euo pipefail
SRC="$(cd "${1:?usage: build_implicit.sh SRC_DIR [BUILD_DIR]}" && pwd)"
BUILD="${2:-/tmp/implicit-build}"
PY=/usr/bin/python3
if ! dpkg -s cython3 python3-tqdm python3-threadpoolctl python3-scipy python3-dev >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y cython3 python3-setuptools python3-numpy python3-scipy \
    python3-dev g++ python3-tqdm python3-threadpoolctl
fi
mkdir -p "$BUILD"
cat > "$BUILD/setup.py" <<EOF
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
SRC = "$SRC"
MODULES = ["implicit._nearest_neighbours", "implicit.evaluation", "implicit.cpu._als",
           "implicit.cpu.bpr", "implicit.cpu.topk", "implicit.cpu.lmf"]
extensions = [Extension(name, [SRC + "/" + name.replace(".", "/") + ".pyx"], language="c++",
        include_dirs=[SRC, np.get_include()],
        extra_compile_args=["-O3", "-std=c++17", "-fopenmp"], extra_link_args=["-fopenmp"])
    for name in MODULES]
setup(name="implicit", version="0.7.3", package_dir={"": SRC},
      ext_modules=cythonize(extensions, compiler_directives={"always_allow_keywords": True,
          "binding": True, "embedsignature": True, "language_level": 3}))
EOF
(cd "$BUILD" && "$PY" setup.py build_ext --inplace --build-temp "$BUILD/temp" > "$BUILD/build.log" 2>&1) ||
  { tail -30 "$BUILD/build.log"; exit 1; }
cd /tmp && PYTHONPATH="$SRC" "$PY" -c "import implicit, implicit.cpu.bpr; print('implicit', implicit.__version__, 'built in', '$SRC')"
