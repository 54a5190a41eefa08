//! Load benchmarks: binaries under `src/bin` and the scripts beside them
//! (`bench/wrk-hit.sh`). Nothing here is part of the library.
