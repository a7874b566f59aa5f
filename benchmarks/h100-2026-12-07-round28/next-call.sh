# Round 29: this ran into all three timeouts and kept nothing (bench --tune then wrote bench.txt only at its end);
# bench --tune now prints each candidate as it finishes; see round 29's call1.sh.
# Prepared for the next H100 call (device tool, carry [".tk", ".whl"]; about 6 minutes): --tune of every candidate
# at the token counts where round 28's table still trails triton_kernels (gpt-oss-20b 0.92-0.95x at 768-896,
# DeepSeek-like 0.96x at 640-768 and 0.91-0.94x at 1280-1792, gpt-oss-120b 0.98x at 1536 and 0.95x at 3072), one
# process per layer, each under a timeout that keeps what it finished. A tune only ranks; ship a row after the
# bench's A/B (call5.sh of round 27 with a variant tree, command.txt of this round).
export R=$(pwd); timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1; cd /tmp
t() { s=$SECONDS; timeout $3 python3 -m mxfp4_plugin.cli bench --quiet --tune --shapes $1 --tokens $2 --out $OUT/$1 >>$OUT/tune.log 2>&1
  echo "$1 $2 rc=$? $((SECONDS-s))s"; sed -n '/^tuning/,$p' $OUT/$1/bench.txt; grep -E '^ +[0-9]+ ' $OUT/$1/bench.txt; rm -f $OUT/$1/bench.png; }
t gpt-oss-20b 768,896 120
t deepseek-like 640,768,1280,1792 200
t gpt-oss-120b 1536,3072 150
