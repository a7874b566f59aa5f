#!/usr/bin/env bash
# One call on the GPU machine (the device tool, carry [".tk", ".whl"]): installs this checkout
# for that machine's Python, then runs what $1 names and leaves everything under $OUT.
#   tests   GPU tests: our kernel (every shipped and candidate config) and every backend vs reference
#   bench   the shipped table against the peers, all three layers (bench.txt/json/png)
#   tune    bench plus every --tune candidate, one process per layer (a timeout keeps finished layers);
#           env SHAPES, TOKENS, SHAPE_TIMEOUT, TUNE_ONLY (a regular expression: only those candidates)
#   tune-rows  --tune at the counts POINTS names, the winners saved as tuned rows, then the bench without and
#           with them (MXFP4_PLUGIN_MOE_CONFIGS), A B A B: a table row's whole round in one call
#   profile Nsight Compute counters (time, DRAM %, issue %, stall reasons) per kernel, ours and the peer's
#   ab      the bench (SHAPES, TOKENS) on variants of one installed file or folder, in turn, twice (A B A B):
#           AB_FILE (its path in the package, e.g. kernels/moe_details/configs.py, or kernels), AB_DIR (a folder
#           of variants: NAME.py for a file, NAME/ for a folder, e.g. made from git refs by
#           benchmarks/ab_from_refs.sh; the ignored /ab/ of the checkout, carried). The tune's ranking is not
#           enough to ship a row: its shorter timing put round 12's rejected 8192-token rows 3% ahead, the
#           bench's A/B 4% behind.
# At most 8 files come back from $OUT: tune leaves tune.log and bench.json/bench.txt per layer.
# KEEP_SITE=1 reuses the install of an earlier call in the same command (to A/B a variant of a file).
# `.tk` holds OpenAI's triton_kernels (extracted from the vLLM wheel), `.whl` pluggy and tqdm.
set -uo pipefail
R=$(pwd)
OUT=${OUT:-$R/gpu-out}
mkdir -p "$OUT"
if [ "${KEEP_SITE:-0}" = 1 ] && [ -d /tmp/site/mxfp4_plugin ]; then
  echo "gpu_run: KEEP_SITE=1: running the install already in /tmp/site (e.g. a kernel variant copied over it)"
else
  rm -rf /tmp/site  # a warm machine keeps the last call's install, and pip --target does not replace it
  mkdir -p /tmp/site
  python3 -m pip install -q --no-deps --no-build-isolation --no-compile --target /tmp/site "$R" "$R"/.whl/*.whl \
      >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }
fi
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1
cd /tmp  # not the checkout: its source folder would shadow the installed package
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
case "${1:-bench}" in
  tests)
    python3 -m pytest -q -x "$R/tests/test_triton_gpu.py" "$R/tests/test_backends_gpu.py" 2>&1 | tee "$OUT/gpu-tests.txt" | tail -5 ;;
  bench)
    python3 -m mxfp4_plugin.cli bench --quiet --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log" | tail -60 ;;
  tune)
    SHAPES=${SHAPES:-gpt-oss-120b deepseek-like gpt-oss-20b}
    for shape in $SHAPES; do
      timeout "${SHAPE_TIMEOUT:-300}" python3 -m mxfp4_plugin.cli bench --quiet --tune ${TUNE_ONLY:+--tune-only "$TUNE_ONLY"} --shapes "$shape" \
          --tokens "${TOKENS:-1,4,16,64,256,1024,4096,8192}" --out "$OUT/$shape" >>"$OUT/tune.log" 2>&1
      echo "$shape: exit $?"; rm -f "$OUT/$shape/bench.png"
    done
    for shape in $SHAPES; do tail -40 "$OUT/$shape/bench.txt"; done ;;
  profile)  # Nsight Compute counters of each kernel of one forward, ours and the peer's ($CASES)
    M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,smsp__issue_active.avg.pct_of_peak_sustained_active
    M=$M,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,launch__grid_size,smsp__inst_executed.sum
    for r in long_scoreboard short_scoreboard wait math_pipe_throttle mio_throttle lg_throttle barrier not_selected \
             no_instruction dispatch_stall membar sleeping branch_resolving; do
      M=$M,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio
    done
    NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
    # per-pipe utilisation (ALU, FMA, FP16, LSU, tensor...): names differ between Nsight versions, so
    # take those this one lists rather than risk an unknown name failing the whole run
    for p in $("$NCU" --query-metrics 2>/dev/null | grep -oE '^sm__(inst_executed_pipe|pipe)_[a-z0-9_]+' | sort -u \
               | grep -E '_(alu|fma|fmaheavy|fmalite|fp16|lsu|shared|tensor_op_gmma|uniform)(_cycles_active)?$'); do
      M=$M,$p.avg.pct_of_peak_sustained_active
    done
    "$NCU" --profile-from-start off --clock-control none --csv --metrics "$M" \
        python3 "$R/benchmarks/profile_layer.py" ${CASES:-gpt-oss-120b:256 deepseek-like:64 gpt-oss-120b:8192} \
        >"$OUT/ncu.csv" 2>/tmp/ncu.err; echo "ncu: exit $?"; tail -3 /tmp/ncu.err ;;
  ab)
    target=/tmp/site/mxfp4_plugin/${AB_FILE:?AB_FILE: the path of the varied file or folder in the package}
    [ -e "$target" ] || { echo "AB_FILE: expected a file or folder of the installed package, got $AB_FILE" >&2; exit 2; }
    if [ -d "$target" ]; then variants=("$R/${AB_DIR:-ab}"/*/); else variants=("$R/${AB_DIR:-ab}"/*.py); fi
    shapes=${SHAPES:-gpt-oss-120b deepseek-like gpt-oss-20b}
    for run in 1 2; do
      for variant in "${variants[@]}"; do
        name=$(basename "$variant" .py)
        if [ -d "$target" ]; then rm -rf "$target"; cp -r "$variant" "$target"; else cp "$variant" "$target"; fi
        find /tmp/site/mxfp4_plugin -name __pycache__ -prune -exec rm -rf {} +
        python3 -m mxfp4_plugin.cli bench --quiet --shapes "${shapes// /,}" --tokens "${TOKENS:-1024,4096,8192}" \
            --out "$OUT/$name-$run" >/dev/null 2>&1 || echo "$name: bench failed"
        echo "== $name, run $run"; grep -E '^ *[a-z]|^ +[0-9]+ ' "$OUT/$name-$run/bench.txt" | grep -v '^note'
        rm -f "$OUT/$name-$run/bench.png" "$OUT/$name-$run/bench.txt"
      done
    done | tee "$OUT/ab.txt" ;;
  tune-rows)  # per line of $POINTS ("SHAPE TOKENS SECONDS [REGEX]", one line per layer, TOKENS comma-separated):
    # bench --tune there (REGEX: --tune-only) saving the winners as tuned rows (rows-SHAPE.json); then, per saved
    # file, the bench A B A B without and with it (MXFP4_PLUGIN_MOE_CONFIGS) at each row's last and middle count.
    # Steps that would end past AB_UNTIL seconds (default 520) are skipped.
    T0=$SECONDS
    while read -r shape tokens limit regex; do
      case "$shape" in ""|"#"*) continue ;; esac
      timeout "$limit" python3 -m mxfp4_plugin.cli bench --tune ${regex:+--tune-only "$regex"} --shapes "$shape" \
          --tokens "$tokens" --out "/tmp/tune-$shape" --save-rows "$OUT/rows-$shape.json" >"$OUT/tune-$shape.log" 2>&1
      echo "tune $shape $tokens: exit $? at $((SECONDS - T0)) s"; grep -E '^tune ' "$OUT/tune-$shape.log" | sort -t: -k2 -n | head -6
      sed -n '/^tuned rows/,/^wrote/p' "$OUT/tune-$shape.log" | grep -v '^wrote'
    done < "${POINTS:?POINTS: a file of SHAPE TOKENS SECONDS [REGEX] lines}"
    for rows in "$OUT"/rows-*.json; do
      [ -e "$rows" ] || continue
      shape=$(basename "$rows" .json); shape=${shape#rows-}
      tokens=$(python3 -c "import json, sys; r = json.load(open(sys.argv[1]))['rows']
print(','.join(map(str, sorted({c for x in r for c in (x['tokens'][1], sum(x['tokens']) // 2)}))))" "$rows")
      [ -n "$tokens" ] || continue
      for run in 1 2; do
        for label in table rows; do
          [ $((SECONDS - T0 + ${AB_TIMEOUT:-90})) -lt "${AB_UNTIL:-520}" ] || { echo "== $shape $label, run $run: no time left"; continue; }
          with=""; [ "$label" = rows ] && with=$rows
          MXFP4_PLUGIN_MOE_CONFIGS=$with timeout "${AB_TIMEOUT:-90}" python3 -m mxfp4_plugin.cli bench --quiet \
              --shapes "$shape" --tokens "$tokens" --out "/tmp/ab-$shape-$label-$run" >/dev/null 2>&1
          echo "== $shape $label, run $run: exit $?"; grep -E '^ +[0-9]+ ' "/tmp/ab-$shape-$label-$run/bench.txt"
        done
      done
    done | tee "$OUT/ab.txt" ;;
  *) echo "usage: gpu_run.sh tests|bench|tune|tune-rows|profile|ab" >&2; exit 2 ;;
esac
