#!/usr/bin/env python3
"""Turns the JSON of scripts/bench.sh into the markdown tables of docs/benchmarks.md.

Reads RESULTS/bench_*.json (Google Benchmark) and RESULTS/python.json (benchmarks/python/bench_recipe.py)
and prints each case with its C++/Python ratios and whether the target of issue 6 is met.
Times are wall-clock (real_time) medians/means as the tools report them. Usage: report.py RESULTS_DIR
"""
import glob
import json
import os
import sys


def load(results):
    cpp = {}
    context = {}
    for path in sorted(glob.glob(os.path.join(results, "bench_*.json"))):
        with open(path) as f:
            data = json.load(f)
        context.update(data.get("context", {}))
        for b in data.get("benchmarks", []):
            name = b["name"].split("/min_time")[0].split("/iterations")[0]
            unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
            cpp[name] = dict(b, ms=b["real_time"] * unit)
    py = {}
    ppath = os.path.join(results, "python.json")
    if os.path.exists(ppath):
        with open(ppath) as f:
            py = json.load(f)
    return cpp, py, context


def fmt_ms(v):
    return "–" if v is None else (f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_x(v):
    return "–" if v is None else f"{v:.2f}×"


def verdict(ok):
    return "–" if ok is None else ("met" if ok else "**missed**")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    cpp, py, ctx = load(sys.argv[1])
    g = lambda name: cpp.get(name, {}).get("ms")
    out = []
    out.append(f"Machine: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
               f"{ctx.get('mhz_per_cpu', '?')} MHz; torch threads: {ctx.get('torch_threads', '?')} (C++), "
               f"{py.get('threads', '?')} (Python); LibTorch {ctx.get('libtorch', '?')}, Python torch "
               f"{py.get('torch', '?')}, scipy {py.get('scipy', '?')}; ohem {ctx.get('ohem', '?')}.")
    out.append("")
    out.append("### 1. Global-magnitude mask threshold (conv weights)")
    out.append("")
    out.append("| model | weights | read pass | ohem select | full mask build | sort (C++) | kthvalue | numpy sort (Py) "
               "| prune.global_unstructured (Py) | sort / select | select / read |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    targets = []
    for d in (18, 50):
        sel, read, srt = g(f"BM_RadixSelect/{d}"), g(f"BM_OneReadPass/{d}"), g(f"BM_SortConcatenated/{d}")
        n = cpp.get(f"BM_RadixSelect/{d}", {}).get("weights")
        out.append(f"| ResNet-{d} | {n / 1e6:.1f} M | {fmt_ms(read)} | {fmt_ms(sel)} | {fmt_ms(g(f'BM_ComputeMasks/{d}'))} "
                   f"| {fmt_ms(srt)} | {fmt_ms(g(f'BM_Kthvalue/{d}'))} | {fmt_ms(py.get(f'mask_numpy_sort_resnet{d}_ms'))} "
                   f"| {fmt_ms(py.get(f'mask_torch_prune_resnet{d}_ms'))} | {fmt_x(ratio(srt, sel))} | {fmt_x(ratio(sel, read))} |"
                   if n else f"| ResNet-{d} | – | | | | | | | | | |")
        r1, r2 = ratio(srt, sel), ratio(sel, read)
        targets.append((f"ResNet-{d}: selection ≥ 25× faster than sort", fmt_x(r1), None if r1 is None else r1 >= 25))
        targets.append((f"ResNet-{d}: selection within 3× of one read pass", fmt_x(r2), None if r2 is None else r2 <= 3))
    out.append("")
    out.append("### 2. Twin scope overhead (ResNet-18, batch 8, 128×128, training mode)")
    out.append("")
    plain, twin, scope = g("BM_PlainForward"), g("BM_TwinForward"), g("BM_ScopeEnterExit")
    over = None if plain is None or twin is None else (twin - plain) / plain
    out.append("| plain forward | twin forward | scope enter+exit alone | twin − plain | scope / plain |")
    out.append("|---|---|---|---|---|")
    out.append(f"| {fmt_ms(plain)} | {fmt_ms(twin)} | {fmt_ms(scope)} | "
               f"{'–' if over is None else f'{100 * over:.1f}%'} | "
               f"{'–' if scope is None or plain is None else f'{100 * scope / plain:.1f}%'} |")
    targets.append(("twin scope overhead ≤ 2% of a plain forward", "–" if over is None else f"{100 * over:.1f}%",
                    None if over is None else over <= 0.02))
    out.append("")
    out.append("### 3. One pairwise training step (BaseCNN/ResNet-18, 4 pairs, 128 px, Adam)")
    out.append("")
    out.append("| step | C++ time | C++ peak tensor memory | Python recipe time | Python peak RSS growth |")
    out.append("|---|---|---|---|---|")
    mem = lambda name: cpp.get(name, {}).get("peak_MB")
    fm = lambda v: "–" if v is None else f"{v:.0f} MB"
    out.append(f"| plain | {fmt_ms(g('BM_PlainStep'))} | {fm(mem('BM_PlainStep'))} | {fmt_ms(py.get('step_plain_ms'))} "
               f"| {fm(py.get('step_plain_peak_rss_growth_mb'))} |")
    out.append(f"| OHEM joint (recipe) | {fmt_ms(g('BM_OhemStepJoint'))} | {fm(mem('BM_OhemStepJoint'))} "
               f"| {fmt_ms(py.get('step_ohem_ms'))} | {fm(py.get('step_ohem_peak_rss_growth_mb'))} |")
    out.append(f"| OHEM sequential | {fmt_ms(g('BM_OhemStepSequential'))} | {fm(mem('BM_OhemStepSequential'))} | – | – |")
    cpp_ratio = ratio(g("BM_OhemStepJoint"), g("BM_PlainStep"))
    py_ratio = py.get("step_ohem_over_plain")
    vs_py = ratio(g("BM_OhemStepJoint"), py.get("step_ohem_ms"))
    mem_ratio = ratio(mem("BM_OhemStepSequential"), mem("BM_OhemStepJoint"))
    targets.append(("OHEM step / plain step ≤ the Python recipe's ratio",
                    f"{fmt_x(cpp_ratio)} vs {fmt_x(py_ratio)}",
                    None if cpp_ratio is None or py_ratio is None else cpp_ratio <= py_ratio))
    targets.append(("our OHEM step ≤ 0.9× the Python recipe's step", fmt_x(vs_py), None if vs_py is None else vs_py <= 0.9))
    targets.append(("sequential peak memory ≤ 0.6× joint", fmt_x(mem_ratio), None if mem_ratio is None else mem_ratio <= 0.6))
    out.append("")
    out.append("### 4. Metrics: SRCC + KRCC + 5-parameter-logistic PLCC")
    out.append("")
    out.append("| n | ohem (C++) | scipy | scipy / ohem |")
    out.append("|---|---|---|---|")
    for n in (10**3, 10**4, 10**5, 10**6):
        c, s = g(f"BM_Metrics/{n}"), py.get(f"metrics_scipy_n{n}_ms")
        out.append(f"| {n:,} | {fmt_ms(c)} | {fmt_ms(s)} | {fmt_x(ratio(s, c))} |")
        if n == 10**5:
            r = ratio(s, c)
            targets.append(("metrics on 10^5 samples ≥ 10× faster than scipy", fmt_x(r), None if r is None else r >= 10))
    out.append("")
    out.append("### 5. gMAD selection")
    out.append("")
    out.append("| images | time |")
    out.append("|---|---|")
    for n in (10**5, 10**6):
        out.append(f"| {n:,} | {fmt_ms(g(f'BM_Gmad/{n}'))} |")
    out.append("")
    out.append("### Targets")
    out.append("")
    out.append("| target | measured | verdict |")
    out.append("|---|---|---|")
    for name, value, ok in targets:
        out.append(f"| {name} | {value} | {verdict(ok)} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
