"""Hopper machine code of our GEMMs without a GPU: registers, programs per SM and MMA-loop instructions
per weight word of every launch of every row of ``configs.TABLE``, for one source tree or two side by side.

    python benchmarks/sass_report.py ab/main ab/scales-at-load

Each argument is a copy of our ``kernels/`` folder (made from git refs by ``benchmarks/ab_from_refs.sh``;
default: this checkout's ``kernels``).

Needs Triton 3.6 (the GPU machine's: ``pip install triton==3.6.0`` in a venv of its own; it compiles for sm90
on any machine, with the ptxas and cuobjdump it bundles) and no torch. The kernels are compiled as
``kernels/moe.py`` launches them on a bf16 layer (BF16X2 words, folded scales, programmatic dependent launch),
with a row's own shape (ANY rows: gpt-oss-120b's), so its K decides whether a weight row's stride divides by 16.
A count, not a timing: fewer instructions per word is what the 16..256-token loop was bound by on the H200
(BENCHMARKS.md rounds 10-13); on the H100 a row with more instructions per word and fewer programs per SM,
but twice the weight bytes in flight per program, was 16% faster (round 15). Only the bench says which is faster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SM90 = dict(regs=65536, smem=233472, smem_per_block_reserved=1024, warps=64, blocks=32)
GPT_OSS_120B = (128, 4, 2880, 2880)


def _compile(tree: str) -> list[dict]:
    """Every launch of every TABLE row of the kernels folder ``tree``, compiled (in a process of its own: the
    trees' packages share a name)."""
    sys.path.insert(0, tree)
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from moe_details import configs, gemm

    tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    rows = []
    for key, max_tokens, cfg in configs.TABLE:
        _, _, hidden, intermediate = key or GPT_OSS_120B
        for name, kernel, g, k in (("gemm1", gemm.gemm1_kernel, cfg.gemm1, hidden),
                                   ("gemm2", gemm.gemm2_kernel, cfg.gemm2, intermediate)):
            launches = [(g, 0)] if g.tail_launch is None else [(g, 1), (g.tail_launch, 2)]
            for c, tail_pass in launches:
                plus = getattr(c, "block_k2", 0)  # (a tree from before block_k2 has none)
                consts = dict(GROUPED=cfg.grouped, WEIGHTS_AS_A=c.weights_as_a, LAYOUT=1, DOT_DTYPE=tl.bfloat16,
                              PRECISION="tf32", BLOCK_N=c.block_n, BLOCK_M=cfg.block_m, BLOCK_K=c.block_k, FOLD=True,
                              PREFETCH_X=c.prefetch_x, SCALES_AT_LOAD=c.scales_at_load, SMALL_M=cfg.small_m,
                              TAIL_M=cfg.tail_m, TAIL_PASS=tail_pass, SPLIT_K=c.split_k, PDL=True, JOINT=c.joint,
                              EVEN_K=k % (c.block_k + plus) == 0, SCALES_PAST_K=True, BLOCK_K2=plus)
                consts = {n: v for n, v in consts.items() if n in kernel.arg_names}
                pointers = _pointer_types(c.split_k if name == "gemm1" else 1, bias=k == 2880)
                compiled = triton.compile(_source(kernel, consts, k, pointers, ASTSource),
                                          target=GPUTarget("cuda", 90, 32),
                                          options=dict(num_warps=c.num_warps, num_stages=c.num_stages,
                                                       **({} if c.maxnreg is None else {"maxnreg": c.maxnreg})))
                cubin = Path(f"/tmp/sass_report_{name}.cubin")
                cubin.write_bytes(compiled.asm["cubin"])
                usage = subprocess.run([tools / "cuobjdump", "-res-usage", cubin], capture_output=True,
                                       text=True).stdout
                sass = subprocess.run([tools / "cuobjdump", "-sass", cubin], capture_output=True, text=True).stdout
                regs = int(re.search(r"REG:(\d+)", usage).group(1))
                words = (2 if name == "gemm1" else 1) * c.block_n * (c.block_k + plus) // 8 // (32 * c.num_warps)
                rows.append(dict(row=f"{_shape_name(key, configs)} <= {max_tokens} tokens" if max_tokens < 1 << 62
                                 else f"{_shape_name(key, configs)} beyond", gemm=name, tail_pass=tail_pass,
                                 regs=regs, per_sm=_programs_per_sm(regs, c.num_warps, compiled.metadata.shared),
                                 spills="STL" in sass, per_word=[round(n / words, 1) for n in _mma_loops(sass)]))
    return rows


def _pointer_types(split_k: int, bias: bool) -> dict:
    """Element types of the kernels' pointers as ``kernels/moe.py`` passes them for bf16 activations and int32
    top-k ids (vLLM's and SGLang's); a split GEMM1 writes float32 partial sums; without a bias the scales
    stand in for it."""
    return dict(x_ptr="*bf16", a_ptr="*bf16", w_ptr="*i32", s_ptr="*u8", b_ptr="*fp32" if bias else "*u8",
                act_ptr="*fp32" if split_k > 1 else "*bf16", y_ptr="*fp32", weights_ptr="*fp32", ids_ptr="*i32",
                sorted_ptr="*i32", block_expert_ptr="*i32", block_rows_ptr="*i32")


def _source(kernel, consts: dict, k: int, pointers: dict, ast_source):
    """The kernel's signature as a launch specialises it: pointers and strides divide by 16, but for a weight
    row's stride in 16-byte quads when K / 32 does not (gpt-oss: 2880 / 32 = 90)."""
    names = kernel.arg_names
    sig = {n: "constexpr" if n in consts else pointers[n] if n.endswith("_ptr") else
           "fp32" if n in ("alpha", "limit") else "i32" for n in names}
    divisible = [(i,) for i, n in enumerate(names) if n not in consts
                 and (n.endswith("_ptr") or n.startswith("stride") or n in ("n_half", "n_out", "k_true"))
                 and not (n == "stride_wq" and (k // 32) % 16)]
    return ast_source(fn=kernel, signature=sig, constexprs={(names.index(n),): v for n, v in consts.items()},
                      attrs={i: [["tt.divisibility", 16]] for i in divisible})


def _shape_name(key, configs) -> str:
    named = {v: n.lower().replace("_", "-") for n, v in vars(configs).items() if isinstance(v, tuple) and len(v) == 4}
    return "ANY" if key is None else named.get(key, str(key))


def _programs_per_sm(regs: int, warps: int, smem: int) -> int:
    """Resident programs per SM, bound by registers (allocated per warp in units of 256), shared memory, warps."""
    per_warp = -(-regs * 32 // 256) * 256
    return min(SM90["regs"] // per_warp // warps, SM90["smem"] // (smem + SM90["smem_per_block_reserved"]),
               SM90["warps"] // warps, SM90["blocks"])


def _mma_loops(sass: str) -> list[int]:
    """Instruction counts of the loops (backward branches) that hold an MMA, in code order."""
    ins = [(int(a, 16), text) for a, text in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    at = {a: i for i, (a, _) in enumerate(ins)}
    loops = []
    for i, (a, text) in enumerate(ins):
        target = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
        if target and int(target.group(1), 16) < a and int(target.group(1), 16) in at:
            body = ins[at[int(target.group(1), 16)]:i + 1]
            if any("HGMMA" in t or "HMMA" in t for _, t in body):
                loops.append(len(body))
    return loops


def main(trees: list[str]) -> None:
    reports = []
    for tree in trees:
        run = subprocess.run([sys.executable, __file__, "--worker", tree], capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"{tree}: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'failed'}")
        reports.append(json.loads(run.stdout))
    by_launch = [{(r["row"], r["gemm"], r["tail_pass"]): r for r in report} for report in reports]
    launches = list(dict.fromkeys(key for report in by_launch for key in report))
    print("launch | " + " | ".join(f"{t}: registers, programs per SM, MMA-loop instructions per weight word"
                                   for t in trees))
    for key in launches:
        found = [report.get(key) for report in by_launch]
        cells = ["-" if r is None else f"{r['regs']:>3} {r['per_sm']} {r['per_word']}{' SPILL' * r['spills']}"
                 for r in found]
        flag = "  <- programs per SM" if len({r and r["per_sm"] for r in found}) > 1 else ""
        print(f"{key[0]:32} {key[1]} pass {key[2]} | " + " | ".join(cells) + flag)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(_compile(sys.argv[2])))
    else:
        main(sys.argv[1:] or [str(Path(__file__).resolve().parents[1] / "kernels")])
