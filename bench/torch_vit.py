#!/usr/bin/env python3
"""bench/torch_vit.py - the same ViT in PyTorch, to time tqs.h against a
framework implementation (make bench-torch; needs Debian's python3-torch).

  python3 bench/torch_vit.py MODEL.tqs [--threads T] [--seconds S]

Reads a factored-attention model file written by tqs.h, checks that its log
psi equals `./examples/model eval` on 64 random configurations (float64 on
both sides: the same function, rounding aside), then times in float64 with T
threads what bench/bench.c times as "forward, batch 256" and "Jacobian, batch
64": log psi of 256 configurations under torch.no_grad, and the Jacobian of
Re and Im log psi of 64 configurations with respect to every parameter, the
rows of SR, two ways a framework user gets them: torch.autograd.functional.
jacobian with vectorize=True (reverse mode, the output rows batched with
vmap) and functorch's vmap of jacrev over the configurations (checked equal).
Prints configurations per second. This is a measuring tool, not
part of the library or its tests.
"""
import math
import struct
import subprocess
import sys
import time

import numpy as np
import torch


def read_model(path):
    raw = open(path, "rb").read()
    if raw[:8] != b"TQSMODEL":
        sys.exit(f"{path}: not a tqs model file")
    Lx, Ly, b, d, h, nl, ff, att = struct.unpack("<8i", raw[12:44])
    (P,) = struct.unpack("<Q", raw[44:52])
    theta = np.frombuffer(raw[52:52 + 8 * P], dtype="<f8").copy()
    if att != 0:
        sys.exit("only factored attention (the default model) is implemented here")
    return dict(Lx=Lx, Ly=Ly, b=b, d=d, h=h, nl=nl, ff=ff), theta


def layout(c):
    """(name, shape) in the file's order (README: model file format)."""
    d, bb, h, ff = c["d"], c["b"] ** 2, c["h"], c["ff"]
    n = (c["Lx"] // c["b"]) * (c["Ly"] // c["b"])
    out = [("We", (d, bb)), ("be", (d,))]
    for l in range(c["nl"]):
        out += [(f"g1{l}", (d,)), (f"b1{l}", (d,)), (f"alpha{l}", (h, n)),
                (f"Wv{l}", (d, d)), (f"bv{l}", (d,)), (f"Wo{l}", (d, d)), (f"bo{l}", (d,)),
                (f"g2{l}", (d,)), (f"b2{l}", (d,)), (f"W1{l}", (ff * d, d)), (f"c1{l}", (ff * d,)),
                (f"W2{l}", (d, ff * d)), (f"c2{l}", (d,))]
    out += [("gh", (d,)), ("bh", (d,)), ("Wr", (d, d)), ("br", (d,)), ("gr", (d,)), ("bR", (d,)),
            ("Wi", (d, d)), ("bi", (d,)), ("gi", (d,)), ("bI", (d,))]
    return out


def unflatten(theta, lay):
    p, k = {}, 0
    for name, shape in lay:
        size = math.prod(shape)
        p[name] = theta[k:k + size].reshape(shape)
        k += size
    assert k == theta.numel(), (k, theta.numel())
    return p


def geometry(c):
    Lx, Ly, b = c["Lx"], c["Ly"], c["b"]
    gx, gy = Lx // b, Ly // b
    site = [[(X * b + u) * Ly + (Y * b + w) for u in range(b) for w in range(b)] for X in range(gx) for Y in range(gy)]
    disp = [[((Q // gy - P // gy) % gx) * gy + ((Q % gy - P % gy) % gy) for Q in range(gx * gy)] for P in range(gx * gy)]
    return torch.tensor(site), torch.tensor(disp)


def ln(x, g, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-6) * g + b


def gelu(u):   # tqs.h's: the tanh form
    return 0.5 * u * (1 + torch.tanh(0.7978845608028654 * (u + 0.044715 * u ** 3)))


def logpsi(theta, cfgs, c, lay, site, disp):
    """(Re, Im) of log psi for a batch of configurations (B, N) of +-1."""
    p = unflatten(theta, lay)
    d, h = c["d"], c["h"]
    dh = d // h
    x = cfgs[:, site] @ p["We"].T + p["be"]                   # (B, n, d)
    B, n, _ = x.shape
    for l in range(c["nl"]):
        y = ln(x, p[f"g1{l}"], p[f"b1{l}"])
        v = (y @ p[f"Wv{l}"].T + p[f"bv{l}"]).view(B, n, h, dh)
        A = p[f"alpha{l}"][:, disp]                           # (h, n, n): positions only
        a = torch.einsum("mpq,bqmc->bpmc", A, v).reshape(B, n, d)
        x = x + a @ p[f"Wo{l}"].T + p[f"bo{l}"]
        u = ln(x, p[f"g2{l}"], p[f"b2{l}"]) @ p[f"W1{l}"].T + p[f"c1{l}"]
        x = x + gelu(u) @ p[f"W2{l}"].T + p[f"c2{l}"]
    z = ln(x.sum(1), p["gh"], p["bh"])
    r = ln(z @ p["Wr"].T + p["br"], p["gr"], p["bR"])
    m = ln(z @ p["Wi"].T + p["bi"], p["gi"], p["bI"])
    # log cosh(w) = w t + log(1 + exp(-2 w t)) - log 2, t = sign(Re w): no overflow
    t = torch.where(r >= 0, 1.0, -1.0).to(r.dtype)
    e = torch.exp(-2 * r * t)
    ph = -2 * m * t
    re = r * t + 0.5 * torch.log((1 + e * torch.cos(ph)) ** 2 + (e * torch.sin(ph)) ** 2) - math.log(2)
    im = m * t + torch.atan2(e * torch.sin(ph), 1 + e * torch.cos(ph))
    return re.sum(-1), im.sum(-1)


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    path, threads, seconds = args[0], 2, 3.0
    if "--threads" in args:
        threads = int(args[args.index("--threads") + 1])
    if "--seconds" in args:
        seconds = float(args[args.index("--seconds") + 1])
    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64)
    c, theta_np = read_model(path)
    lay = layout(c)
    theta = torch.from_numpy(theta_np)
    site, disp = geometry(c)
    N = c["Lx"] * c["Ly"]

    # the same function: log psi against tqs.h's on 64 random configurations
    out = subprocess.run(["./examples/model", "eval", path, "--random", "64", "--seed", "7"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [list(map(float, l.split())) for l in out if l.strip()]
    cf = torch.tensor([r[:N] for r in rows])
    ref = torch.tensor([r[N:N + 2] for r in rows])
    re, im = logpsi(theta, cf, c, lay, site, disp)
    dre = (re - ref[:, 0]).abs().max().item()
    dim = torch.remainder(im - ref[:, 1] + math.pi, 2 * math.pi).sub(math.pi).abs().max().item()
    print(f"model {path}: {c}, {theta.numel()} parameters")
    print(f"log psi against tqs.h on 64 configurations: max |diff| Re {dre:.2e}, Im {dim:.2e}")
    if not (dre < 1e-9 and dim < 1e-9):
        sys.exit("torch_vit.py: the two models differ; the timing would compare different functions")

    gen = torch.Generator().manual_seed(1)

    def random_configs(B):
        s = torch.ones(B, N)
        for k in range(B):
            s[k, torch.randperm(N, generator=gen)[: N // 2]] = -1
        return s

    def rate(fn, B):
        fn()   # warm-up
        k, t0 = 0, time.perf_counter()
        while True:
            fn()
            k += 1
            t = time.perf_counter() - t0
            if t > seconds:
                return k * B / t

    cf256 = random_configs(256)
    with torch.no_grad():
        fwd = rate(lambda: logpsi(theta, cf256, c, lay, site, disp), 256)
    cf64 = random_configs(64)

    def rows_fn(th):
        a, b = logpsi(th, cf64, c, lay, site, disp)
        return torch.cat([a, b])

    jac = rate(lambda: torch.autograd.functional.jacobian(rows_fn, theta, vectorize=True), 64)
    # per-sample gradients as functorch writes them: vmap of jacrev of one configuration
    jac2 = float("nan")
    try:
        import functorch

        def one(th, s):
            a, b = logpsi(th, s.unsqueeze(0), c, lay, site, disp)
            return torch.cat([a, b])

        per_sample = functorch.vmap(functorch.jacrev(one), in_dims=(None, 0))
        J = per_sample(theta, cf64).reshape(128, -1)
        Jref = torch.autograd.functional.jacobian(rows_fn, theta, vectorize=True)   # rows Re (64), then Im (64)
        Jref = torch.stack([Jref[:64], Jref[64:]], 1).reshape(128, -1)
        assert torch.allclose(J, Jref, rtol=1e-10, atol=1e-12)
        jac2 = rate(lambda: per_sample(theta, cf64), 64)
    except ImportError:
        pass
    print(f"torch {torch.__version__}, {threads} threads, float64")
    print(f"forward, batch 256: {fwd:.4g} configs/s")
    print(f"Jacobian, batch 64, autograd.functional.jacobian(vectorize=True): {jac:.4g} configs/s ({2 * jac:.4g} rows/s)")
    print(f"Jacobian, batch 64, functorch vmap(jacrev): {jac2:.4g} configs/s ({2 * jac2:.4g} rows/s)")


if __name__ == "__main__":
    main()
