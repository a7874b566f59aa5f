# round 27, one call: install; per variant tree (TREES), its kernels into the install and the GPU tests (TK) with
# them; then the A/B (AB: variant run pairs, in order; TOK, SHAPES) and, with AB2, a second one (TOK2, SHAPES2)
export R=$(pwd); s=$SECONDS; timeout 120 bash benchmarks/gpu_run.sh none >/tmp/inst.log 2>&1; echo "install $((SECONDS-s))s"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
export PYTHONPATH=/tmp/site:$R/.tk PYTHONUNBUFFERED=1
for t in ${TREES:-f-new2 g-plus h-plussl i-plus-prefill}; do
  rm -rf /tmp/site/mxfp4_plugin/kernels; cp -r $R/ab-k/$t /tmp/site/mxfp4_plugin/kernels; cd /tmp
  s=$SECONDS; timeout ${TT:-150} python3 -m pytest -q -x -p no:cacheprovider $R/tests/test_triton_gpu.py -k "${TK:-every_table_row}" >$OUT/gpu-tests-$t.txt 2>&1; echo "$t tests rc=$? $((SECONDS-s))s"; tail -2 $OUT/gpu-tests-$t.txt; cd $R
done
TOK=${TOK:-16,64,256,512} BT=${BT:-150} bash ab-k/call2.sh "${AB:-a-head 1 f-new2 1 g-plus 1 h-plussl 1 a-head 2 f-new2 2 g-plus 2 h-plussl 2}" 2>&1 | grep -v "^ *reference\|^$\|^note\|^wrote"
if [ -n "${AB2:-}" ]; then
  TOK=${TOK2:-1024,2048,4096} SHAPES=${SHAPES2:-gpt-oss-120b,gpt-oss-20b} BT=${BT:-150} bash ab-k/call2.sh "$AB2" 2>&1 | grep -v "^ *reference\|^$\|^note\|^wrote"
fi
