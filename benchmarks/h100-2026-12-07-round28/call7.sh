# round 28: tunes of gpt-oss-120b and DeepSeek-like between the bench's points (shipped kernels)
export R=$(pwd); timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1
rm -rf /tmp/site/mxfp4_plugin/kernels; cp -r $R/ab-k/z-head /tmp/site/mxfp4_plugin/kernels; cd /tmp
t() { s=$SECONDS; timeout $4 python3 -m mxfp4_plugin.cli bench --quiet --tune --tune-only "$3" --shapes $1 --tokens $2 --out $OUT/$1-$5 >>$OUT/tune.log 2>&1
  echo "$1 $2 rc=$? $((SECONDS-s))s"; sed -n '/^tuning/,$p' $OUT/$1-$5/bench.txt; grep -E '^ +[0-9]+ ' $OUT/$1-$5/bench.txt; rm -f $OUT/$1-$5/bench.png; }
t gpt-oss-120b 320,384,640 "grouped m(16|32|64)" 140 lo
t deepseek-like 320,384,640 "grouped m(16|32|64)" 140 lo
t gpt-oss-120b 1536,3072 "grouped m(32|64|128)" 110 hi
t deepseek-like 1536,3072 "grouped m(32|64|128)" 110 hi
