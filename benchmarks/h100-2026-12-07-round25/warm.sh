# bench on gpt-oss at 4 and 16 tokens with HEAD's timing.py and the working tree's (warm-up of >= 25 ms), A B A B
R=$(pwd); timeout 120 bash benchmarks/gpu_run.sh none >/dev/null 2>&1; export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1
cd /tmp; cp /tmp/site/mxfp4_plugin/bench/timing.py /tmp/timing-new.py
b() { cp $2 /tmp/site/mxfp4_plugin/bench/timing.py; find /tmp/site -name __pycache__ -prune -exec rm -rf {} +
  s=$SECONDS; timeout 80 python3 -m mxfp4_plugin.cli bench --quiet --shapes gpt-oss-120b,gpt-oss-20b --tokens ${TOK:-4,16} --out $OUT/$1 >$OUT/$1.log 2>&1
  echo "== $1 rc=$? $((SECONDS-s))s"; grep -E '^ +[0-9]+ |^[a-z]' $OUT/$1/bench.txt | grep -v note; rm -f $OUT/$1/bench.png $OUT/$1/bench.json; }
b head1 $R/ab-k/timing-head.py; b warm1 /tmp/timing-new.py; b head2 $R/ab-k/timing-head.py; b warm2 /tmp/timing-new.py
