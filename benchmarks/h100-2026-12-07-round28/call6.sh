# round 28: a token sweep of the shipped kernels between the bench's points, then a tune of gpt-oss-20b's
# m32-m128 candidates at 384-896 tokens (with j-m64-768's table installed)
export R=$(pwd); timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1
put() { rm -rf /tmp/site/mxfp4_plugin/kernels; cp -r $R/ab-k/$1 /tmp/site/mxfp4_plugin/kernels; find /tmp/site -name __pycache__ -prune -exec rm -rf {} +; }
cd /tmp; put z-head; s=$SECONDS
timeout 170 python3 -m mxfp4_plugin.cli bench --quiet --shapes gpt-oss-120b,deepseek-like --tokens 320,384,640,768,896,1536,3072 --out $OUT/sweep >$OUT/sweep.log 2>&1
echo "sweep rc=$? $((SECONDS-s))s"; grep -E '^ *[a-z]|^ +[0-9]+ ' $OUT/sweep/bench.txt | grep -v '^note'
put j-m64-768; s=$SECONDS
timeout ${TUNE_T:-330} python3 -m mxfp4_plugin.cli bench --quiet --tune --tune-only "${TUNE_ONLY:-grouped m(32|64|128)}" --shapes gpt-oss-20b --tokens ${TUNE_TOK:-384,768,896} --out $OUT/tune20b >$OUT/tune.log 2>&1
echo "tune rc=$? $((SECONDS-s))s"; tail -45 $OUT/tune20b/bench.txt; rm -f $OUT/*/bench.png
