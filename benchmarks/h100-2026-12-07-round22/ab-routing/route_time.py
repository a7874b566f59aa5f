"""Routing (group_by_expert) alone, per kernels/ variant: CUDA-graph replay, median us per call,
and block_expert / block_rows / per-block pair sets checked against the first variant."""
import importlib.util, os, statistics, sys
import torch

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m

CASES = [(16 * 4, 128, 16, 0), (64 * 4, 128, 16, 0), (256 * 4, 128, 16, 0), (256 * 8, 256, 16, 0),
         (16 * 8, 256, 16, 0), (192 * 4, 32, 32, 0), (4096 * 4, 128, 128, 32), (8192 * 4, 32, 256, 0)]
variants = sys.argv[1:]
gen = torch.Generator(device="cuda").manual_seed(0)
ref = {}
rows = []
for v in variants:
    name = os.path.basename(v.rstrip("/"))
    r = load(os.path.join(v, "moe_details", "routing.py"), "routing_" + name.replace("-", "_"))
    for case in CASES:
        p, e, bm, tm = case
        tokens = p // (8 if e == 256 else 4)
        k = p // tokens
        ids = torch.argsort(torch.rand(tokens, e, device="cuda", generator=gen), dim=1)[:, :k].reshape(-1).to(torch.int32)
        ids = ref.get(("ids",) + case, ids)
        ref[("ids",) + case] = ids
        g0 = r.group_by_expert(ids, e, bm, tm)
        torch.cuda.synchronize()
        places = bm + tm
        # pairs to blocks within an expert follow the atomics' order: compare (expert, pair) sets
        be, br, sp = g0.block_expert.tolist(), g0.block_rows.tolist(), g0.sorted_pairs.tolist()
        sets = sorted((be[b], q) for b in range(g0.max_blocks) if be[b] >= 0 for q in sp[b * places: b * places + br[b]])
        got = (be, br, sets)
        same = ref.setdefault(case, got) == got
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(20):
                r.group_by_expert(ids, e, bm, tm)
        graph.replay()
        torch.cuda.synchronize()
        times = []
        for _ in range(7):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(5):
                graph.replay()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) * 1000 / 100)
        rows.append((name, case, statistics.median(times), same))
        print(f"{name:12s} pairs {p:6d} experts {e:3d} block {bm}+{tm}: {statistics.median(times):6.2f} us  same as first: {same}", flush=True)
