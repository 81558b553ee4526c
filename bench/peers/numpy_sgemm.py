"""OpenBLAS sgemm through numpy: S = A @ B.T on row-normalised f32 [N, D] x [M, D].

Usage: numpy_sgemm.py N M D REPS. Prints one JSON line: per-rep milliseconds, numpy version, the
OpenBLAS core it picked (openblas_get_corename) and its thread count. Only the product is timed
(rows are normalised before timing); each rep writes a fresh output like unigap does.
"""
import ctypes
import json
import sys
import time

import numpy as np

n, m, d, reps = (int(x) for x in sys.argv[1:5])
rng = np.random.default_rng(1)
a = rng.standard_normal((n, d), dtype=np.float32)
b = rng.standard_normal((m, d), dtype=np.float32)
a /= np.linalg.norm(a, axis=1, keepdims=True)
b /= np.linalg.norm(b, axis=1, keepdims=True)

core, threads = "unknown", -1
for lib in ("libopenblas.so.0", "libopenblasp-r0.3.so", "libblas.so.3"):
    try:
        h = ctypes.CDLL(lib)
        h.openblas_get_corename.restype = ctypes.c_char_p
        core = h.openblas_get_corename().decode()
        threads = h.openblas_get_num_threads()
        break
    except (OSError, AttributeError):
        continue

s = a @ b.T  # warm-up
times = []
for _ in range(reps):
    t0 = time.perf_counter()
    s = a @ b.T
    times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"times_ms": times, "numpy": np.__version__, "core": core, "threads": threads}))
