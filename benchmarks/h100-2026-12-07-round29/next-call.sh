# Prepared for the next H100 call (device tool, carry [".tk", ".whl"]; about 8 minutes): a narrowed --tune at the
# counts round 29 did not reach (DeepSeek-like 704 and 1792, gpt-oss-20b 896, gpt-oss-120b 1536), each process under a
# timeout; every candidate's time is printed as it finishes ("tune ..." lines), so a cut-short tune still ranks.
export R=$(pwd); timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1; cd /tmp
t() { s=$SECONDS; timeout $4 python3 -m mxfp4_plugin.cli bench --tune --tune-only "$3" --shapes $1 --tokens $2 --out /tmp/o/$1-$2 >$OUT/$1-$2.log 2>/tmp/$1-$2.err
  echo "== $1 $2 rc=$? $((SECONDS-s))s"; grep -E '^tune ' $OUT/$1-$2.log | sort -t: -k2 -n | head -12; grep -E '^ +[0-9]+ ' /tmp/o/$1-$2/bench.txt 2>/dev/null || tail -3 /tmp/$1-$2.err; }
t deepseek-like 1792 'm64|m128/32' 130
t deepseek-like 704 'm32|m64' 120
t gpt-oss-20b 896 'm64|m128' 100
t gpt-oss-120b 1536 'm64|m128/32' 120
