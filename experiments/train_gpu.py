"""One GPU round of training as one prepared command: measure each model's rate, train to fill a budget, pack.

    python experiments/train_gpu.py mri-vae eit-clinical-vae --minutes 4 --out "$OUT"
    python experiments/train_gpu.py mri-vae --smoke --minutes 0.2 --out /tmp/gpu-out   # 16x16, on a CPU

For each model named (``configs.train.GPU_CONFIGS``: larger data and batches than the CPU configs):

1. a probe of ``--probe-steps`` steps measures steps per second after compilation (from the
   probe's ``metrics.jsonl``);
2. the run's steps, and its cosine schedule, are set to fill 85 % of ``--minutes`` at that rate
   (the rest for evaluations and checkpoints); ``max_minutes`` (1.5 x the budget + 1 minute for
   data and compilation) stops it with a checkpoint if the rate drops, and
   ``train_*.py --workdir ... --resume`` continues it;
3. the generator is exported with its model card, and the export and ``metrics.jsonl`` are packed
   into ``--out`` as ``<name>.tar.part-NN``, pieces of at most 15 MiB (the device returns files of
   at most 16 MiB, at most two folders deep).

Unpack here with ``cat <name>.tar.part-* | tar -x -C checkpoints-gpu``. The device image lacks
nilearn and nibabel (the ICBM152 maps of ``synthetic_mri``): carry their wheels and install them
first with ``pip install --no-deps --no-index .whl/*.whl`` (see the README, "Train on a GPU").
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import tarfile
import time
from pathlib import Path

import jax
from configs.train import GPU_CONFIGS

from manifold.train import export_generator, train

PART_BYTES = 15 * 2**20


def steps_per_second(metrics: Path) -> float:
    """Training steps per second between the first and the last logged step (compilation excluded)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    logged = [r for r in rows if "wall_seconds" in r and not any(k.startswith("heldout") for k in r)]
    if len(logged) < 2 or logged[-1]["step"] == logged[0]["step"]:
        raise ValueError(f"{metrics}: needs two logged steps to measure a rate; raise --probe-steps")
    first, last = logged[0], logged[-1]
    return (last["step"] - first["step"]) / (last["wall_seconds"] - first["wall_seconds"])


def pack(name: str, export: Path, metrics: Path, out: Path) -> list[Path]:
    """``export`` and ``metrics`` as a tar cut into ``out/<name>.tar.part-NN`` files of <= 15 MiB."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(export, arcname=name)
        tar.add(metrics, arcname=f"{name}-metrics.jsonl")
    data = buffer.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, start in enumerate(range(0, len(data), PART_BYTES)):
        parts.append(out / f"{name}.tar.part-{i:02d}")
        parts[-1].write_bytes(data[start : start + PART_BYTES])
    return parts


def train_one(name: str, args: argparse.Namespace) -> dict:
    cfg = GPU_CONFIGS[name](smoke=args.smoke)
    probe_dir, run_dir = args.workdir / f"{name}-probe", args.workdir / name
    probe = dataclasses.replace(
        cfg, steps=args.probe_steps, log_every=max(args.probe_steps // 6, 1), eval_every=10 * args.probe_steps,
        checkpoint_every=args.probe_steps, max_minutes=None, progress=False,
    )  # fmt: skip
    train(probe, probe_dir)
    rate = steps_per_second(probe_dir / "metrics.jsonl")
    steps = max(args.probe_steps, int(0.85 * rate * args.minutes * 60.0))  # 15 % for evaluations and checkpoints
    steps = steps - steps % 100 if steps >= 1000 else steps
    run = dataclasses.replace(
        cfg, steps=steps, schedule_steps=steps, eval_every=max(steps // 10, 1), checkpoint_every=max(steps // 10, 1),
        max_minutes=1.5 * args.minutes + 1.0, progress=False,
    )  # fmt: skip
    t0 = time.perf_counter()
    result = train(run, run_dir)
    card = export_generator(run_dir, args.workdir / f"{name}-export", name=name, overwrite=True)
    parts = pack(name, args.workdir / f"{name}-export", run_dir / "metrics.jsonl", args.out)
    return {
        "model": name,
        "rate_steps_per_s": round(rate, 2),
        "steps_planned": steps,
        "steps_done": result.step,
        "seconds": round(time.perf_counter() - t0, 1),
        "heldout": card["heldout"],
        "size_bytes": card["size_bytes"],
        "parts": [p.name for p in parts],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=sorted(GPU_CONFIGS))
    parser.add_argument("--out", type=Path, required=True, help="folder of the packed exports ($OUT on the device)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per model, after the probe")
    parser.add_argument("--probe-steps", type=int, default=60, help="steps of the rate probe")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/manifold-gpu"), help="runs and exports")
    parser.add_argument("--smoke", action="store_true", help="the 16x16 smoke configs (seconds, on a CPU)")
    args = parser.parse_args(argv)
    print(f"devices: {jax.devices()}", flush=True)
    for name in args.models:
        summary = train_one(name, args)
        print(json.dumps(summary), flush=True)
        (args.out / f"{name}-summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
