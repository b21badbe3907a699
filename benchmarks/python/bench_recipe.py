#!/usr/bin/env python3
"""Side-by-side Python baselines for docs/benchmarks.md, measured on the same machine and threads.

Times, with Debian's python3-torch / python3-scipy (skips cleanly, exit 0, if they are missing):
  1. the global-magnitude mask on ResNet-18/50 conv-weight shapes with the recipe's numpy-sort method
     (concatenate |w|, sort, threshold) and with torch.nn.utils.prune.global_unstructured;
  3. one pairwise OHEM training step written as the recipe writes it (four forwards through
     flag-controlled masked convolutions of a ResNet-18 BaseCNN, fidelity + MSE consistency, Adam)
     and the plain pairwise step, with peak RSS growth;
  4. scipy's SRCC + KRCC + 5-parameter-logistic-fitted PLCC on 10^3 .. 10^6 samples.

Usage: bench_recipe.py [--threads N] [--json OUT] [--quick] [--cases step,masks,metrics] [--max-n N]
"""
import argparse
import json
import math
import resource
import sys
import time


def timeit(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def conv_shapes(depth):
    shapes = [(64, 3, 7, 7)]
    bottleneck = depth == 50
    blocks = [2, 2, 2, 2] if depth == 18 else [3, 4, 6, 3]
    cin = 64
    for stage in range(4):
        width = 64 << stage
        out = width * 4 if bottleneck else width
        for b in range(blocks[stage]):
            if bottleneck:
                shapes += [(width, cin, 1, 1), (width, width, 3, 3), (out, width, 1, 1)]
            else:
                shapes += [(width, cin, 3, 3), (width, width, 3, 3)]
            if b == 0 and (stage > 0 or cin != out):
                shapes.append((out, cin, 1, 1))
            cin = out
    return shapes


def bench_masks(torch, np, results, repeat):
    import torch.nn.utils.prune as prune
    for depth in (18, 50):
        convs = [torch.nn.Conv2d(s[1], s[0], s[2], bias=False) for s in conv_shapes(depth)]
        n = sum(c.weight.numel() for c in convs)

        def numpy_sort():
            # The recipe: concatenate |w| of every conv, sort, threshold at min(ceil(ratio*N), N-1).
            allw = np.concatenate([c.weight.detach().abs().numpy().ravel() for c in convs])
            s = np.sort(allw)
            t = s[min(int(math.ceil(0.65 * n)), n - 1)]
            return [c.weight.detach().abs().numpy() >= t for c in convs]

        def torch_prune():
            params = [(c, "weight") for c in convs]
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.65)
            for c in convs:
                prune.remove(c, "weight")

        results[f"mask_numpy_sort_resnet{depth}_ms"] = 1e3 * timeit(numpy_sort, repeat)
        results[f"mask_torch_prune_resnet{depth}_ms"] = 1e3 * timeit(torch_prune, repeat)
        results[f"mask_weights_resnet{depth}"] = n


def make_basecnn(torch):
    nn = torch.nn

    class MaskedConv2d(nn.Conv2d):
        """A conv whose forward uses weight * mask when the model's `pruned` flag is set (the recipe)."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.register_buffer("mask", torch.ones_like(self.weight, dtype=torch.bool))
            self.pruned = False

        def forward(self, x):
            w = self.weight * self.mask if self.pruned else self.weight
            return self._conv_forward(x, w, self.bias)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = MaskedConv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = MaskedConv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(MaskedConv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (self.down(x) if self.down is not None else x))

    class BaseCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = MaskedConv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            layers, cin = [], 64
            for stage in range(4):
                cout = 64 << stage
                for b in range(2):
                    layers.append(Block(cin, cout, 2 if (stage > 0 and b == 0) else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(512, 1)

        def set_pruned(self, flag):
            for m in self.modules():
                if isinstance(m, MaskedConv2d):
                    m.pruned = flag

        def forward(self, x):
            y = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
            y = self.layers(y).mean((2, 3))
            y = y / y.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return self.fc(y)

    return BaseCNN, MaskedConv2d


def fidelity(torch, y1, y2, g):
    # The recipe's pairwise fidelity loss with the Thurstone/erf probability (variance 1, detached).
    var = torch.ones_like(y1) * 2
    p = 0.5 * (1 + torch.erf((y1 - y2) / torch.sqrt(2 * (var.detach() + 1e-8))))
    return torch.mean(1 - torch.sqrt(p * g + 1e-8) - torch.sqrt((1 - p) * (1 - g) + 1e-8))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_step(torch, results, repeat):
    BaseCNN, MaskedConv2d = make_basecnn(torch)
    torch.manual_seed(0)
    model = BaseCNN()
    convs = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    with torch.no_grad():  # the recipe's global magnitude mask, ratio 0.65
        allw = torch.cat([c.weight.abs().flatten() for c in convs])
        t = allw.sort()[0][min(math.ceil(0.65 * allw.numel()), allw.numel() - 1)]
        for c in convs:
            c.mask.copy_(c.weight.abs() >= t)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    x1, x2 = torch.randn(4, 3, 128, 128), torch.randn(4, 3, 128, 128)
    g = (torch.rand(4, 1) > 0.5).float()
    model.train()

    def plain():
        y1, y2 = model(x1), model(x2)
        loss = fidelity(torch, y1, y2, g)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def ohem():
        model.set_pruned(False)
        y1, y2 = model(x1), model(x2)
        model.set_pruned(True)
        p1, p2 = model(x1), model(x2)
        model.set_pruned(False)
        loss = (fidelity(torch, y1, y2, g) + fidelity(torch, p1, p2, g) + torch.nn.functional.mse_loss(y1, p1)
                + torch.nn.functional.mse_loss(y2, p2))
        opt.zero_grad()
        loss.backward()
        opt.step()

    base = peak_rss_mb()
    plain()  # warm-up (counted: the first step allocates the Adam state, as in the C++ benchmark)
    results["step_adam_ms"] = 1e3 * timeit(opt.step, repeat)  # the optimizer step alone
    results["step_plain_ms"] = 1e3 * timeit(plain, repeat)
    results["step_plain_peak_rss_growth_mb"] = peak_rss_mb() - base
    ohem()
    results["step_ohem_ms"] = 1e3 * timeit(ohem, repeat)
    results["step_ohem_peak_rss_growth_mb"] = peak_rss_mb() - base
    results["step_ohem_over_plain"] = results["step_ohem_ms"] / results["step_plain_ms"]


def bench_metrics(np, results, sizes, repeat):
    from scipy import optimize, stats

    def logistic5(x, b1, b2, b3, b4, b5):
        return b1 * (0.5 - 1.0 / (1.0 + np.exp(b2 * (x - b3)))) + b4 * x + b5

    rng = np.random.default_rng(0)
    failed = set()
    for n in sizes:
        mos = rng.uniform(0, 100, n)
        pred = np.tanh((mos - 50) / 30) + rng.normal(0, 0.2, n)

        def run():
            stats.spearmanr(pred, mos)
            stats.kendalltau(pred, mos)
            # ohem's documented 5p start (docs/metrics.md): (hi − lo, sign/std(pred), mean(pred), 0, (hi + lo)/2).
            sign = 1.0 if stats.pearsonr(pred, mos)[0] >= 0 else -1.0
            hi, lo = np.max(mos), np.min(mos)
            p0 = [hi - lo, sign / np.std(pred), np.mean(pred), 0.0, 0.5 * (hi + lo)]
            try:
                beta, _ = optimize.curve_fit(logistic5, pred, mos, p0=p0, maxfev=10000)
            except RuntimeError:  # maxfev reached: the time spent is still what scipy costs
                failed.add(n)
                return
            stats.pearsonr(logistic5(pred, *beta), mos)

        results[f"metrics_scipy_n{n}_ms"] = 1e3 * timeit(run, repeat if n < 10**5 else 1)
        if n in failed:
            results[f"metrics_scipy_n{n}_fit"] = "curve_fit stopped at maxfev=10000"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and sizes (smoke run)")
    ap.add_argument("--max-n", type=int, default=10**6, help="largest metrics sample size (scipy's fit is slow)")
    ap.add_argument("--cases", default="step,masks,metrics", help="comma-separated subset of step,masks,metrics")
    args = ap.parse_args()
    cases = set(args.cases.split(","))
    unknown = cases - {"step", "masks", "metrics"}
    if unknown:
        ap.error(f"--cases: unknown case(s) {sorted(unknown)}; choose from step, masks, metrics")
    try:
        import numpy as np
        import torch
    except ImportError as e:  # skip cleanly where python3-torch is absent
        print(f"skipped: {e} (install with scripts/setup.sh --python)")
        return 0
    torch.set_num_threads(args.threads)
    repeat = 1 if args.quick else 5
    results = {"torch": torch.__version__, "numpy": np.__version__, "threads": torch.get_num_threads()}
    print(f"python baselines | torch {torch.__version__} | threads {torch.get_num_threads()}", flush=True)
    # The step first: its peak-RSS growth is read from the process's high-water mark, which the larger
    # mask benchmark would otherwise have raised already.
    if "step" in cases:
        bench_step(torch, results, repeat)
    if "masks" in cases:
        bench_masks(torch, np, results, repeat)
    if "metrics" in cases:
        try:
            import scipy
        except ImportError as e:
            print(f"scipy metrics skipped: {e}")
        else:
            results["scipy"] = scipy.__version__
            sizes = [n for n in (10**3, 10**4, 10**5, 10**6) if n <= (10**4 if args.quick else args.max_n)]
            bench_metrics(np, results, sizes, repeat)
    for k, v in results.items():
        print(f"{k:40s} {v:.3f}" if isinstance(v, float) else f"{k:40s} {v}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(results, f, indent=2)
        import os
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
