# Sourced by the MPI benchmark scripts (dist_speedup.sh, dist_transport.sh): installs Open MPI from Debian,
# builds build-mpi/ (Release, -DANS_WITH_MPI=ON) with ans-train, and sets BIN and DATA.
scripts/deps.sh libopenmpi-dev openmpi-bin
cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DANS_WITH_MPI=ON -DANS_BUILD_BENCHMARKS=OFF > /dev/null
cmake --build build-mpi -j"$(nproc)" --target ans-train > /dev/null
BIN=build-mpi/examples/ans-train
DATA="${ANS_DATA_DIR:-../shared/data}"
