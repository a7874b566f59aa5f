"""Round 23: the order of the top-k sum's loads and adds in sm90 SASS, without a GPU (Triton 3.6, as
benchmarks/sass_report.py). L: a global load, +: a float add, S: a store.

    python reduce_sass.py path/to/kernels      # a copy of kernels/ (e.g. ab-k/a-head, ab-k/c-p16)
"""
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from moe_details import gemm  # noqa: E402

tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
kernel = gemm.reduce_topk_kernel
names = kernel.arg_names
for slots, split, y in ((4, 2, "*fp32"), (4, 1, "*fp32"), (8, 1, "*bf16"), (4, 1, "*bf16")):
    consts = {n: v for n, v in dict(SPLIT_K=split, SLOTS=slots, BLOCK=1024, PDL=True).items() if n in names}
    ptrs = dict(y_ptr=y, ids_ptr="*i32", out_ptr="*bf16")
    sig = {n: "constexpr" if n in consts else ptrs[n] if n.endswith("_ptr") else "i32" for n in names}
    divisible = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names)
                 if n.endswith("_ptr") or n.startswith("stride") or n == "n"}
    src = ASTSource(fn=kernel, signature=sig, constexprs={(names.index(n),): v for n, v in consts.items()},
                    attrs=divisible)
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4))
    cubin = Path("/tmp/reduce_sass.cubin")
    cubin.write_bytes(compiled.asm["cubin"])
    sass = subprocess.run([tools / "cuobjdump", "-sass", cubin], capture_output=True, text=True).stdout
    ins = re.findall(r"/\*[0-9a-f]{4}\*/\s+([^;]*);", sass)
    seq = "".join("L" if re.search(r"\bLDG", t) else "+" if "FADD" in t else "S" if "STG" in t else "" for t in ins)
    print(f"slots {slots} (SLOTS or top_k), split {split}, y {y}: {seq}")
