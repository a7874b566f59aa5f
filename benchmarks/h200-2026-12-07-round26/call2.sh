# usage: bash ab-k/call2.sh "VARIANT RUN VARIANT RUN ..." (env TOK, SHAPES, BT)
export R=$(pwd); s=$SECONDS; timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1; echo "install $((SECONDS-s))s"; tail -2 /tmp/inst.log
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1; cd /tmp
TOK=${TOK:-1,2,4,8,16,64,256,1024,4096,8192}
b() { rm -rf /tmp/site/mxfp4_plugin/kernels; cp -r $R/ab-k/$1 /tmp/site/mxfp4_plugin/kernels; find /tmp/site -name __pycache__ -prune -exec rm -rf {} +
  s=$SECONDS; timeout ${BT:-270} python3 -m mxfp4_plugin.cli bench --quiet --shapes ${SHAPES:-gpt-oss-120b,deepseek-like,gpt-oss-20b} --tokens $TOK --out $OUT/$1-$2 >$OUT/$1-$2.log 2>&1
  echo "== $1 run $2 rc=$? $((SECONDS-s))s"; grep -E '^ *[a-z]|^ +[0-9]+ ' $OUT/$1-$2/bench.txt | grep -v '^note'; rm -f $OUT/$1-$2/bench.png $OUT/$1-$2/bench.txt; tail -3 $OUT/$1-$2.log; }
set -- $1
while [ $# -ge 2 ]; do b $1 $2 | tee -a $OUT/ab.txt; shift 2; done
