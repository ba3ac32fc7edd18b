#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent reference for the sampler's committed golden tokens (tests/test_sampling_features.cpp,
"a fixed seed draws the committed tokens"): MT19937-64 after Matsumoto & Nishimura's reference code and
blockformer's draw (temperature -> top-k -> top-p -> min-p over double probabilities, then
u = (raw >> 11) * 2^-53 * total). Prints the two token lists the test expects; stdlib only."""
import math
M64 = (1 << 64) - 1
class MT64:
    def __init__(self, seed):
        self.mt = [0] * 312
        self.mt[0] = seed & M64
        for i in range(1, 312):
            self.mt[i] = (6364136223846793005 * (self.mt[i-1] ^ (self.mt[i-1] >> 62)) + i) & M64
        self.i = 312
    def __call__(self):
        if self.i >= 312:
            UM, LM = 0xFFFFFFFF80000000, 0x7FFFFFFF
            for k in range(312):
                x = (self.mt[k] & UM) | (self.mt[(k+1) % 312] & LM)
                xa = x >> 1
                if x & 1: xa ^= 0xB5026F5AA96619E9
                self.mt[k] = self.mt[(k + 156) % 312] ^ xa
            self.i = 0
        x = self.mt[self.i]; self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & M64

g = MT64(5489)
for _ in range(9999): g()
assert g() == 9981545732273789042, "not the standard mt19937_64 ([rand.predef])"

import struct
def f32(x): return struct.unpack('f', struct.pack('f', x))[0]
logits = [f32(v) for v in [0.5, -1.0, 2.0, 1.0, 0.0, 1.5, -0.5, 0.25]]
def run(T, top_k, top_p, min_p, seed, n=24):
    T = f32(T); top_p = f32(top_p); min_p = f32(min_p)
    g = MT64(seed); out = []
    for _ in range(n):
        cands = [(l, i) for i, l in enumerate(logits)]
        keep = len(cands)
        if top_k and top_k < keep:
            cands.sort(key=lambda c: (-c[0], c[1])); keep = top_k
        if top_p < 1: cands[:keep] = sorted(cands[:keep], key=lambda c: (-c[0], c[1]))
        mx = max(c[0] for c in cands[:keep])
        probs = [math.exp((c[0] - mx) / T) for c in cands[:keep]]
        total = sum(probs)
        if top_p < 1:
            mass = 0; i = 0
            while i < keep:
                mass += probs[i] / total; i += 1
                if mass >= top_p: break
            keep = i
        probs = [0.0 if p < min_p else p for p in probs[:keep]]
        kt = 0.0
        for p in probs: kt += p
        u = (g() >> 11) * 2.0**-53 * kt
        for i in range(keep):
            u -= probs[i]
            if u < 0 and probs[i] > 0: out.append(cands[i][1]); break
        else: raise SystemExit("fallback")
    return out
print(run(1.0, 0, 1.0, 0.0, 2024))
print(run(0.7, 5, 0.9, 0.05, 7))
