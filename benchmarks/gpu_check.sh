#!/usr/bin/env bash
# The GPU checks of issues 3 and 7 in one short run, for a lent GPU machine (numbers: benchmarks/RESULTS.md).
#
#   OUT=DIR REFERENCE=DC_CHECKOUT [SHARED=DIR] [BUDGET_S=500] [DEVICE=cuda] [STAGES=...] bash benchmarks/gpu_check.sh
#
# Stages, most important first, each under its own time limit so a slow one cannot starve the rest:
#   1. ensemble: the stacked-ensemble evaluator on digits, eager and with CUDA graphs (a few seconds): if
#      the graphs fail, eval_speed times no graphs variant (--cuda-graphs off); if the ensemble fails, later
#      stages train the K networks one after another (--seeds-together off); the log says so;
#   2. eval_speed: benchmarks/eval_speed.py on CIFAR-10, IPC 10/1/50, K = 5, against the reference
#      evaluation loop (issue 7's GPU goal: >= 10x the reference at IPC 10);
#   3. distill_speed: benchmarks/distill_speed.py on MNIST (SHARED must hold mnist.npz), dm/dc/d2m against
#      the reference main_DM.py / main.py at IPC 1 and 10 (issue 7);
#   4. grids (not run unless named in STAGES): the D2M evidence grid (experiments/d2m-evidence.toml: paper
#      protocol, 5 networks per set) on CIFAR-10, then on digits (issue 3).
#   5. fit (not run unless named in STAGES): D2M sized to the card (issue 3): benchmarks/d2m_cost.py measures
#      the paper preset's pre-training and distillation iteration on FIT_DATASET (default cifar10), then
#      benchmarks/d2m_fit.py turns FIT_PRETRAIN_S / FIT_DISTILL_S seconds into iteration counts written
#      into a copy of experiments/d2m-gpu.toml (OUT/d2m-gpu-sized.toml), which runs at IPC 1 and 10, then 50
#      (FIT_CAL_PRETRAIN / FIT_CAL_DISTILL: iterations measured, default 40 / 20; FIT_RUN_ARGS adds options to
#      benchmark.run, e.g. "--protocol ci --threads 1" for a dry rehearsal on a CPU). FIT_ALSO_DISTILL, a comma
#      list of iteration counts, distils `d2m` again at each on the generator just pre-trained (IPC 1 and 10,
#      before IPC 50): the lent machine does not outlive the call, so the generator is only there in this one.
# Logs and the results store (records; artifacts too when small enough) are written under OUT.
# The workplace's GPU image has torch, pandas, tabulate and matplotlib but not kornia (imported by the
# evaluator's ZCA module): carry its wheels (kornia, kornia_rs) and install them first, e.g.
#   pip install --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && export PYTHONPATH=/tmp/site
set -u
out=${OUT:?set OUT to a folder for logs and results}
reference=${REFERENCE:?set REFERENCE to a VICO-UoE/DatasetCondensation checkout}
budget=${BUDGET_S:-500}
results=${RESULTS:-/tmp/gpu-check-results}
device=${DEVICE:-cuda}
stages=${STAGES:-ensemble,eval_speed,distill_speed}  # a comma list: rerun only some, or add grids
started=$(date +%s)
export PYTHONUNBUFFERED=1
[ -n "${SHARED:-}" ] && export D2M_BENCH_SHARED_DATA=$SHARED

left() { echo $((budget - ($(date +%s) - started))); }
stage() {  # stage NAME SECONDS COMMAND...: run under min(SECONDS, time left), log to OUT/NAME.log
  local name=$1 limit=$2; shift 2
  case ",$stages," in *",${name%%_*},"*|*",$name,"*) ;; *) echo "## $name: not asked for"; return 0;; esac
  local cap; cap=$(left)
  [ "$cap" -lt "$limit" ] && limit=$cap
  if [ "$limit" -le 10 ]; then echo "## $name: skipped, no time left"; return 1; fi
  echo "## $name (limit ${limit}s, $(date -u +%H:%M:%S))"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "## $name: exit $rc after $(($(date +%s) - started))s in all"
  return "$rc"
}

nvidia-smi -L 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"

together=auto
graphs=auto
DEVICE=$device stage ensemble 90 python3 - <<'EOF'; case $? in 0) ;; 3) graphs=off;; *) together=off; graphs=off;; esac
import dataclasses, os, time, torch, traceback
from benchmark.data import load_dataset
from benchmark.distiller import SyntheticSet
from benchmark.evaluate import evaluate
from benchmark.protocol import get_protocol
data = load_dataset("digits")
cuda = torch.device(os.environ.get("DEVICE", "cuda"))
x = torch.cat([data.train.images_of_class(c, 10, torch.Generator().manual_seed(0)) for c in range(10)])
s = SyntheticSet(x.to(cuda), torch.arange(10, device=cuda).repeat_interleave(10))
test = data.test.to(cuda)
protocol = dataclasses.replace(get_protocol("smoke"), epochs=50)
for mode, graphs in (("off", "off"), ("on", "off"), ("on", "off"), ("on", "on"), ("on", "on")):  # 2nd: warm
    start = time.perf_counter()
    try:
        r = evaluate(s, test, data.spec, "convnet", protocol, [0, 1, 2, 3, 4], cuda, seeds_together=mode,
                     cuda_graphs=graphs)
    except Exception:
        traceback.print_exc()
        raise SystemExit(3 if graphs == "on" else 1) from None
    print(mode, graphs, {k: v for k, v in r.extra.items() if k in ("seeds_together", "cuda_graphs", "graph_captures",
          "eager_steps")}, [round(a, 1) for a in r.accuracies], f"{time.perf_counter() - start:.2f}s", flush=True)
    if mode == "on" and min(r.accuracies) <= 50:
        raise SystemExit(3 if graphs == "on" else 1)
EOF
echo "## later stages: --seeds-together $together; eval_speed --cuda-graphs $graphs"

stage eval_speed 200 python3 -m benchmarks.eval_speed --datasets cifar10 --ipc 10,1,50 --seeds 5 --epochs 300 \
    --precisions "${PRECISIONS:-fp32}" --device "$device" --threads 8 --reference "$reference" --together "$together" \
    --cuda-graphs "$graphs"

# DM_COMPILE=off,on also times DM's compiled forwards on the card (unmeasured there; a failed compile ends the stage)
stage distill_speed 200 python3 -m benchmarks.distill_speed --methods dm,dc,d2m --ipc 1,10 --threads 8 \
    --reference "$reference" --compile "${DM_COMPILE:-off}"

for part in cifar10:1,10 cifar10:50 digits:1,10,50; do  # CIFAR-10 first: the CPU cannot afford it
  ipcs=${part#*:}
  stage "grids_d2m_evidence_${part%%:*}_ipc${ipcs//,/-}" 300 python3 -m benchmark.run \
      --grid experiments/d2m-evidence.toml --datasets "${part%%:*}" --ipc "$ipcs" --device "$device" \
      --seeds-together "$together" --results "$results" --no-progress --no-report
done

fit_dataset=${FIT_DATASET:-cifar10}
if stage fit_cost 120 python3 -m benchmarks.d2m_cost --dataset "$fit_dataset" --budget paper --device "$device" \
       --threads "${THREADS:-8}" --pretrain-iterations "${FIT_CAL_PRETRAIN:-40}" --iterations "${FIT_CAL_DISTILL:-20}" --warmup 5 \
       --json "$out/d2m_cost.json" &&
   [ -f "$out/d2m_cost.json" ] &&
   python3 -m benchmarks.d2m_fit --cost "$out/d2m_cost.json" --grid experiments/d2m-gpu.toml \
       --pretrain-seconds "${FIT_PRETRAIN_S:-130}" --distill-seconds "${FIT_DISTILL_S:-110}" \
       --out "$out/d2m-gpu-sized.toml"; then
  fit_run() {  # fit_run STAGE LIMIT GRID IPCS
    # shellcheck disable=SC2086  # FIT_RUN_ARGS is a list of options
    stage "$1" "$2" python3 -m benchmark.run --grid "$3" --ipc "$4" --device "$device" --seeds-together "$together" \
        --results "$results" --no-progress ${FIT_RUN_ARGS:-}
  }
  fit_run fit_ipc1-10 480 "$out/d2m-gpu-sized.toml" 1,10
  also=${FIT_ALSO_DISTILL:-}
  for n in ${also//,/ }; do
    python3 -m benchmarks.d2m_fit --cost "$out/d2m_cost.json" --grid experiments/d2m-gpu.toml \
        --pretrain-seconds "${FIT_PRETRAIN_S:-130}" --distill-iterations "$n" --methods d2m \
        --out "$out/d2m-gpu-sized-it$n.toml" && fit_run "fit_also_it$n" 300 "$out/d2m-gpu-sized-it$n.toml" 1,10
  done
  fit_run fit_ipc50 480 "$out/d2m-gpu-sized.toml" 50
fi

if [ -d "$results/records" ]; then
  tar -cJf "$out/records.tar.xz" -C "$results" $(cd "$results" && ls -d records failures 2>/dev/null)
  tar -cJf "$out/artifacts.tar.xz" -C "$results" artifacts
  [ "$(stat -c %s "$out/artifacts.tar.xz")" -lt 15000000 ] || rm -f "$out/artifacts.tar.xz"
fi
ls -la "$out"
echo "## done in $(($(date +%s) - started))s"
