#!/usr/bin/env python3
"""Constants of the AVX-512 sweep's exp2 (Exp2Sum in native/cpu/logprobs/avx512_impl.h; kExp2A,
kExp2G, kExp2Tab in native/cpu/logprobs/kernels.h), and its measured error.

2^r ~ A ((r + a)^2 + G) on [-1/64, 1/64], a = 46/32: a relative minimax fit (linear program on 8001
points), then the fp32 pair (A, G) nearby with the smallest simulated error among those for which
r = 0 gives exactly 1. The error is measured by simulating the kernel's fp32 operations (each FMA
rounded once) at random d c in [-150, 0], [-30, 0] and [-0.1, 0] for three multipliers, against
double exp2, per term as acc() adds it (the product tq v never rounded). The former three-FMA form
(1 + r (S1 + r S2), S1 = 0.6931573153, S2 = 0.2402267605) is measured the same way.

A development tool (numpy, scipy), not part of the build:  python3 scripts/fit-exp2-sweep.py
"""
import numpy as np
from scipy.optimize import linprog

f32 = np.float32
ALPHA = 46 / 32
MAGIC = 393216.0


def r32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def table(a_scale):
    i = np.arange(32)
    return r32(a_scale * 2.0 ** (i / 32) * 2.0 ** np.where(i < 14, 2, 1))


def new_terms(d, c, tab, g):
    p = d * c  # exact in double
    j = r32(p + MAGIC)
    q = j - (MAGIC + ALPHA)  # exact
    rp = r32(p - q)
    v = r32(rp * rp + g)
    k = np.round((j - MAGIC) * 32).astype(np.int64)
    return tab[k & 31] * 2.0 ** np.floor(q) * v


def old_terms(d, c):
    tab = r32(2.0 ** (np.arange(32) / 32))
    s1, s2 = float(f32(0.6931573153)), float(f32(0.2402267605))
    p = d * c
    j = r32(p + MAGIC)
    q = j - MAGIC
    r = r32(p - q)
    v = r32(r32(s2 * r + s1) * r + 1.0)
    k = np.round(q * 32).astype(np.int64)
    return tab[k & 31] * 2.0 ** np.floor(q) * v


rng = np.random.default_rng(1)
N = 1 << 20
targets = np.r_[-rng.random(N) * 150, -rng.random(N) * 30, -rng.random(N) * 0.1]
mults = [float(f32(np.log2(np.e) / t)) for t in (1.0, 0.7, 1 / 3.3)]


def max_err(fn, pts):
    m = 0.0
    for c in mults:
        d = r32(pts / c)
        m = max(m, float(np.abs(fn(d, c) / 2.0 ** (d * c) - 1).max()))
    return m


x = np.linspace(-1 / 64, 1 / 64, 8001)
fx = 2.0**x
u, w = (x + ALPHA) ** 2 / fx, 1 / fx
ones = np.ones_like(x)
lp = linprog([0, 0, 1], A_ub=np.vstack([np.c_[u, w, -ones], np.c_[-u, -w, -ones]]), b_ub=np.r_[ones, -ones],
             bounds=[(None, None)] * 3, method="highs")
A, B, fit = lp.x
print(f"fit: A {A!r} B {B!r}, relative error {fit:.3g} in exact arithmetic")
g0 = f32(B / A)
few = targets[::20]
best = None
for da in range(-40, 41):
    a_scale = A * (1 + da * 1.5e-8)
    tab = table(a_scale)
    for dg in range(-40, 41):
        g = float(g0 + f32(dg) * np.spacing(g0))
        if float(r32(tab[0] / 4 * float(r32(ALPHA * ALPHA + g)))) != 1.0:
            continue  # d = 0 must give exactly 1
        e = max_err(lambda d, c: new_terms(d, c, tab, g), few)
        if best is None or e < best[0]:
            best = (e, a_scale, g)
_, a_scale, g = best
tab = table(a_scale)
print(f"A {a_scale!r}  kExp2G = {f32(g)!r}")
print("kExp2Tab = {" + ", ".join(f"{float(t):.9g}f" for t in tab) + "}")
print(f"d = 0 gives {float(r32(new_terms(np.array([0.0]), mults[0], tab, g))[0])!r}")
print(f"max relative error per term: this form {max_err(lambda d, c: new_terms(d, c, tab, g), targets):.3g}, "
      f"the three-FMA form {max_err(old_terms, targets):.3g}")
