#!/usr/bin/env bash
# Variant folders for `gpu_run.sh ab` from git refs: ab/<ref>/ holds the ref's copy of the folder
# AB_FILE names in the installed package (default kernels; its checkout path is the same for
# kernels/... and adapters/..., mxfp4_plugin/<path> for the core). Run here, then carry "ab":
#   benchmarks/ab_from_refs.sh main scales-at-load
#   AB_FILE=kernels TOKENS=4,16,64,256 bash benchmarks/gpu_run.sh ab      (on the GPU machine)
set -euo pipefail
path=${AB_FILE:-kernels}
case "$path" in kernels*|adapters*) src=$path ;; *) src=mxfp4_plugin/$path ;; esac
git cat-file -e "HEAD:$src" 2>/dev/null || { echo "AB_FILE: $src is not a path of this checkout" >&2; exit 2; }
[ "$(git cat-file -t "HEAD:$src")" = tree ] || { echo "AB_FILE: $src is a file: put its variants in ab/ as NAME.py" >&2; exit 2; }
[ $# -ge 2 ] || { echo "usage: AB_FILE=<folder> $0 REF REF... (at least two refs to compare)" >&2; exit 2; }
for ref in "$@"; do
  git rev-parse --verify -q "$ref^{commit}" >/dev/null || { echo "$ref: not a git ref" >&2; exit 2; }
done
for ref in "$@"; do
  out=ab/${ref//\//-}
  rm -rf "$out"; mkdir -p "$out"
  git archive "$ref" "$src" | tar -x -C "$out" --strip-components="$(tr -cd / <<<"$src/" | wc -c)"
  echo "$out: $src at $(git rev-parse --short "$ref")"
done
