#!/usr/bin/env bash
# Everything a session with a lent GPU has to do, in two device calls (device time is short):
# build the CUDA extension, run the tests (the CUDA parity tests un-skip), then every GPU benchmark.
# Each step has its own time limit so one slow step cannot eat the others; all output goes to
# $OUT (the device tool brings it back), or to ./gpu_out when run by hand.
#
# Before the calls, on the dev machine (the real scan and the commit id do not travel by themselves):
#   mkdir -p device_carry && cp ../shared/data/semantickitti/sequences/08/velodyne/000000.bin \
#     ../shared/data/semantickitti/sequences/08/labels/000000.label device_carry/
#   git rev-parse HEAD > device_carry/commit.txt
# then two calls while the machine stays warm (one call may run 10 minutes at most; the built
# extension is kept between them):
#   run(command="bash benchmarks/gpu_session.sh build tests", carry=["device_carry"], timeout_s=420)
#   run(command="bash benchmarks/gpu_session.sh bench", carry=["device_carry"], timeout_s=420)
# and copy the figures into benchmarks/RESULTS.md (device, date, commit: $OUT/summary.txt).
# With no arguments all three parts run (by hand on a GPU box).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"
mkdir -p "$out"

# The benchmarks read the real scan from ../shared; the tests must not see a ../shared that holds
# only that one file (they would look for the other captures), so it exists only during `bench`.
sequence=../shared/data/semantickitti/sequences/08
placed_scan=no
place_scan() {
  if [ -f device_carry/000000.bin ] && [ ! -e ../shared ]; then
    mkdir -p "$sequence/velodyne" "$sequence/labels" && cp device_carry/000000.bin "$sequence/velodyne/" &&
      { [ ! -f device_carry/000000.label ] || cp device_carry/000000.label "$sequence/labels/"; } && placed_scan=yes
  fi
}
remove_scan() { if [ "$placed_scan" = yes ]; then rm -rf ../shared; placed_scan=no; fi; }
trap remove_scan EXIT

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, keep going
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
  tail -n 25 "$out/$name.log"
}

{
  date -u +"date: %Y-%m-%d %H:%M UTC"
  echo "commit: $(cat device_carry/commit.txt 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} | tee "$out/summary.txt"

parts="${*:-build tests bench}"
for part in $parts; do
  case $part in
    build)
      step build 300 env TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" PCSEG_WITH_CUDA=1 \
        python setup.py build_ext --inplace ;;
    tests)
      step tests 100 python -m pytest -q -p no:cacheprovider tests/test_ops_voxelize.py tests/test_ops_neighbors.py \
        tests/test_ops_sampling_grouping.py tests/test_ops_voxel_features.py tests/test_sparse_kernels.py \
        tests/test_sparse_layers.py tests/test_minkunet.py tests/test_pointnet2.py tests/test_metrics.py ;;
    bench)
      place_scan
      step bench_ops_gpu 60 python benchmarks/bench_ops_gpu.py --device cuda --repeats 50
      step bench_sparse 90 python benchmarks/bench_sparse.py --device cuda --repeat 10 --widths 0.5,1.0 --train-width 0.5
      step bench_pointnet2 60 python benchmarks/bench_pointnet2.py --device cuda --repeat 10
      step bench_pretrained 60 python benchmarks/bench_pretrained.py --device cuda --scans 4
      step bench_engine 60 python benchmarks/bench_engine.py --device cuda --steps 8
      remove_scan ;;
    *) echo "gpu_session.sh: unknown part '$part' (build, tests, bench)" >&2; exit 2 ;;
  esac
done
