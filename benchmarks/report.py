#!/usr/bin/env python3
"""Turns the JSON of scripts/bench.sh into the markdown tables of docs/benchmarks.md.

Reads RESULTS/bench_*.json (Google Benchmark), RESULTS/python.json (benchmarks/python/bench_recipe.py) and
the training-step rounds RESULTS/step/bench_step.R.json + RESULTS/step/python.R.json, and prints each case
with its C++/Python ratios and whether the target of issue 6 is met. Times are wall-clock (real_time) as
the tools report them; step figures are medians over the rounds, ratios the median of per-round ratios.
Usage: report.py RESULTS_DIR
"""
import glob
import json
import os
import statistics
import sys


def load_cpp(paths, context):
    cpp = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        context.update(data.get("context", {}))
        for b in data.get("benchmarks", []):
            name = b["name"].split("/min_time")[0].split("/iterations")[0]
            unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
            cpp[name] = dict(b, ms=b["real_time"] * unit)
    return cpp


def load_json(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def load(results):
    context = {}
    cpp = load_cpp(sorted(glob.glob(os.path.join(results, "bench_*.json"))), context)
    py = load_json(os.path.join(results, "python.json"))
    rounds = {}  # per step directory: (C++ step results, Python step results) per round
    for sub in ("step", "step-malloc"):
        rounds[sub] = []
        for path in sorted(glob.glob(os.path.join(results, sub, "bench_step.*.json"))):
            r = path.rsplit(".", 2)[1]
            rounds[sub].append((load_cpp([path], context), load_json(os.path.join(results, sub, f"python.{r}.json"))))
        for _, p in rounds[sub]:  # versions and threads of the Python side, if the main run lacked them
            for k in ("torch", "threads"):
                py.setdefault(k, p.get(k))
    return cpp, py, rounds, context


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return "" if len(values) < 2 else f" ({min(values):.0f}–{max(values):.0f})"


def fmt_ms(v):
    return "–" if v is None else (f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_x(v):
    return "–" if v is None else f"{v:.2f}×"


def verdict(ok):
    return "–" if ok is None else ("met" if ok else "**missed**")


def step_table(out, rounds, targets):
    """Appends the step table of some rounds to `out`, and the step targets to `targets` if given."""
    out.append("| step | C++ time | C++ step peak | C++ persistent | Python recipe time | Python peak RSS growth |")
    out.append("|---|---|---|---|---|---|")
    cval = lambda name, key: [r[0].get(name, {}).get(key) for r in rounds]
    pval = lambda key: [r[1].get(key) for r in rounds]
    fm = lambda v: "–" if v is None else f"{v:.0f} MB"
    rows = [("plain", "BM_PlainStep", "step_plain"), ("Adam step alone", "BM_AdamStep", "step_adam"),
            ("OHEM joint (recipe)", "BM_OhemStepJoint", "step_ohem"),
            ("OHEM sequential", "BM_OhemStepSequential", None),
            ("OHEM joint, reuse_buffers(false)", "BM_OhemStepJointNoReuse", None),
            ("OHEM sequential, reuse_buffers(false)", "BM_OhemStepSequentialNoReuse", None)]
    for label, cname, pkey in rows:
        times = cval(cname, "ms")
        ptimes = pval(f"{pkey}_ms") if pkey else []
        out.append(f"| {label} | {fmt_ms(median(times))}{spread(times)} | {fm(median(cval(cname, 'peak_MB')))} "
                   f"| {fm(median(cval(cname, 'persistent_MB')))} "
                   f"| {fmt_ms(median(ptimes)) if pkey else '–'}{spread(ptimes)} "
                   f"| {fm(median(pval(f'{pkey}_peak_rss_growth_mb'))) if pkey and pkey != 'step_adam' else '–'} |")
    per_round = lambda f: median([f(c, p) for c, p in rounds])
    ms = lambda c, name: c.get(name, {}).get("ms")
    mem = lambda c, name: c.get(name, {}).get("peak_MB")
    cpp_ratio = per_round(lambda c, p: ratio(ms(c, "BM_OhemStepJoint"), ms(c, "BM_PlainStep")))
    py_ratio = per_round(lambda c, p: p.get("step_ohem_over_plain"))
    vs_py = per_round(lambda c, p: ratio(ms(c, "BM_OhemStepJoint"), p.get("step_ohem_ms")))
    plain_vs_py = per_round(lambda c, p: ratio(ms(c, "BM_PlainStep"), p.get("step_plain_ms")))
    mem_ratio = per_round(lambda c, p: ratio(mem(c, "BM_OhemStepSequential"), mem(c, "BM_OhemStepJoint")))
    mem_ratio_nr = per_round(
        lambda c, p: ratio(mem(c, "BM_OhemStepSequentialNoReuse"), mem(c, "BM_OhemStepJointNoReuse")))
    seq_time = per_round(lambda c, p: ratio(ms(c, "BM_OhemStepSequential"), ms(c, "BM_OhemStepJoint")))

    # What OHEM adds beyond two plain forward+backward passes: OHEM − 2·plain + Adam (Adam runs once either way).
    def extra(ohem, plain, adam):
        return None if None in (ohem, plain, adam) else ohem - 2 * plain + adam

    cpp_extra = per_round(lambda c, p: extra(ms(c, "BM_OhemStepJoint"), ms(c, "BM_PlainStep"), ms(c, "BM_AdamStep")))
    py_extra = per_round(lambda c, p: extra(p.get("step_ohem_ms"), p.get("step_plain_ms"), p.get("step_adam_ms")))
    out.append("")
    out.append(f"Per-round ratios (medians): OHEM/plain {fmt_x(cpp_ratio)} (C++) vs {fmt_x(py_ratio)} (Python); "
               f"C++/Python {fmt_x(plain_vs_py)} (plain step), {fmt_x(vs_py)} (OHEM step); Sequential/Joint "
               f"time {fmt_x(seq_time)}, step peak memory {fmt_x(mem_ratio)} ({fmt_x(mem_ratio_nr)} without "
               "buffer reuse).")
    out.append(f"OHEM's cost beyond two plain forward+backward passes (OHEM − 2·plain + Adam, median per round): "
               f"{fmt_ms(cpp_extra)} (C++), {fmt_ms(py_extra)} (Python).")
    if targets is None:
        return
    targets.append(("OHEM step / plain step ≤ the Python recipe's ratio",
                    f"{fmt_x(cpp_ratio)} vs {fmt_x(py_ratio)}",
                    None if cpp_ratio is None or py_ratio is None else cpp_ratio <= py_ratio))
    targets.append(("our OHEM step ≤ 0.9× the Python recipe's step", fmt_x(vs_py), None if vs_py is None else vs_py <= 0.9))
    targets.append(("sequential peak memory ≤ 0.6× joint",
                    f"{fmt_x(mem_ratio)} ({fmt_x(mem_ratio_nr)} without buffer reuse)",
                    None if mem_ratio is None else mem_ratio <= 0.6))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    cpp, py, rounds, ctx = load(sys.argv[1])
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
    out.append("### 2. Twin scope overhead (ResNet-18, 128×128, training mode)")
    out.append("")
    scope, floor = g("BM_ScopeEnterExit"), g("BM_CopyMaskedWeights")
    out.append(f"Scope enter+exit alone, cold caches: {fmt_ms(scope)}; for reference, LibTorch's copy of every "
               f"masked weight into buffers allocated once, cold caches: {fmt_ms(floor)}.")
    out.append("")
    out.append("Plain and twin forwards alternate in one loop; medians of each and of the per-iteration ratio.")
    out.append("")
    out.append("| batch | plain forward | twin forward | twin / plain − 1 | scope / plain | copy floor / plain |")
    out.append("|---|---|---|---|---|---|")
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"
    for batch in (8, 32):
        pair = cpp.get(f"BM_PlainVsTwinForward/{batch}", {})
        plain, twin, over = pair.get("plain_ms"), pair.get("twin_ms"), pair.get("overhead")
        out.append(f"| {batch} | {fmt_ms(plain)} | {fmt_ms(twin)} | {pct(over)} | {pct(ratio(scope, plain))} "
                   f"| {pct(ratio(floor, plain))} |")
        if batch == 8:
            targets.append(("twin scope overhead ≤ 2% of a plain forward (batch 8)", pct(over),
                            None if over is None else over <= 0.02))
        else:
            targets.append((f"(same at batch {batch}, for reference)", pct(over), None))
    out.append("")
    out.append("### 3. One pairwise training step (BaseCNN/ResNet-18, 4 pairs, 128 px, Adam)")
    out.append("")
    out.append(f"Medians over {len(rounds['step'])} rounds (range in brackets); each round runs the C++ steps and "
               "then the Python recipe's steps. Memory: C++ peak tensor memory of a step above what was live "
               "before it, and the persistent tensor memory between steps (model, gradients, Adam state, twin "
               "state); Python: growth of the process's peak RSS, not the same measure.")
    out.append("")
    step_table(out, rounds["step"], targets)
    if rounds["step-malloc"]:
        out.append("")
        out.append("The same rounds with glibc's heap trimming off for both sides (`MALLOC_TRIM_THRESHOLD_=4294967295 "
                   "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TOP_PAD_=268435456`): memory freed in one step is "
                   "reused in the next instead of being returned to the kernel and page-faulted in again.")
        out.append("")
        step_table(out, rounds["step-malloc"], None)
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
