"""Training configurations of the shipped models and the command line shared by the train scripts.

Choices:

* **eit-vae**: lung EIT phantoms 128x128, ``k = 8``. The phantom family has exactly 8 smooth
  parameters (``manifold.data.LUNG_PARAM_NAMES``), so 8 latent variables can represent it and
  no more are needed. Images lie in [-1, 0.3], so the decoder output is linear.
* **eit-clinical-vae**: the clinical EIT mixture (``manifold.data.clinical_mixture``: healthy
  lungs, 1-3 anomalies, whole-lung and lobar collapse, pneumothorax, effusion, all at once) at
  64x64, ``k = 32``. ``experiments/clinical_family.py`` measures the mixture's PCA ceiling (held-out
  rel. error 0.25 / 0.17 / 0.11 / 0.06 at k = 8 / 16 / 32 / 64) and intrinsic dimension (about 10),
  with up to 25 continuous parameters in one image; k = 32 stays well below the 104 independent
  EIT measurements. 64x64 because EIT resolves about a tenth of the chest diameter, and a 2-core CPU
  trains it in about an hour. A plain conv VAE (``beta = 0.02``, as ``eit-vae``) was still worse than
  PCA with the same k after 1500 steps (held-out rel. error 0.144 against 0.115), so this one is the
  PCA + residual decoder of ``mri-vae``, started at probabilistic PCA, with ``beta = 2 sigma^2`` for
  the PCA residual variance per pixel at k = 32 (3.4e-4).
* **mri-vae**: 128x128, ``k = 256``, trained on ``manifold.data.mri_training_images`` (80 %
  domain-randomised synthetic MR, 20 % augmented MNI152 slices in three orientations). The latent
  size comes from ``experiments/latent_size_sweep.py``: the PCA ceiling on held-out synthetic and
  MNI test images rises by about 1.5 dB per doubling of k up to 256 (21.3 / 23.0 / 25.0 dB at
  k = 64 / 128 / 256 on held-out synthetic images), while the intrinsic dimension of the data is
  only ~9-12 (TwoNN, MLE): the fine anatomy is many small directions, not a few large ones. So
  the decoder is probabilistic PCA with k = 256 plus a convolutional residual (``subspace=True``,
  ``manifold.models._subspace``), started at PPCA; ``beta = 2 sigma^2`` with ``sigma^2`` about the
  PCA residual per pixel (3.5e-3). k = 256 is the largest k whose weights fit the 20 MB budget.
  The first shipped model had 8000 images and 2000 steps (45 min, held-out 25.3 dB). A 12000-step run
  on those 8000 overfitted early: at step 1000 its encode-decode PSNR was 25.6 dB on training images
  and 25.1 dB held out. So the config draws 32000 (the synthetic data are a pure function of the key,
  so more cost only memory, 2 GB), and its 12000 steps (2.5 h on 2 cores) ran as resumed runs of
  ``--max-minutes`` each: held out 26.87 dB, the model shipped now. Above 10 000 images the PPCA
  start uses the randomized SVD.
* **mri-gan-64**: MNI152 axial slices 64x64, ``k = 16``. One template gives ~100 distinct
  training slices that vary mainly with slice position (1 parameter); augmentation adds a
  rotation, an intensity scale and a smooth 4x4-grid elastic warp. 16 latent variables capture the
  position and the dominant warp modes while keeping ``k`` small enough that undersampled MRI
  (a few thousand measurements) stays far above the ``~2k`` measurements an injective ``A`` on
  ``M`` needs; ``k = 32`` reconstructs held-out slices only marginally better at this data size.
  Images lie in [0, 1], so the output is a sigmoid.
* **mri-gan** (shipped; formerly named ``mri-vaegan``): ``mri-vae`` fine-tuned as a VAE-GAN (``ModelConfig("vaegan")``,
  ``init_from="mri-vae"``, a tenth of its learning rate): an anti-aliased discriminator on the
  reconstructions and on prior samples, adversarial pull 0.25 of the reconstruction's
  (:func:`manifold.train.vaegan_losses`). Without a spectral term (2300 steps, 66 min on 2 cores)
  a grid line at the Nyquist frequency grew on the prior samples (spectral peak 1.3x the data's
  at step 950, 2.8x at 2300): the discriminator cannot see the frequency its blur removes, and
  the reconstruction term does not constrain prior samples (with a plain discriminator the grid
  came within 400 steps, 70x). With ``spectral_weight=1`` (the penalty
  :func:`manifold.metrics.spectral_peak_excess` inside the adversarial term) the penalty was
  active from step ~230 and rarely after ~1000; at step 2750 (80 min) the prior samples' peak is
  1.20x (high-frequency share 0.31 of the data's, ``mri-vae`` 0.09), held-out encode-decode
  26.61 dB (``mri-vae`` 26.87).
* Nets are small (about 0.2 M parameters, < 1 MB checkpoints) because they are trained on a
  shared 2-core CPU in under an hour; ``--smoke`` shrinks everything to 16x16 for the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from manifold.models import ModelConfig
from manifold.train import DataConfig, TrainConfig, export_generator, train

__all__ = ["CONFIGS", "GPU_CONFIGS", "add_arguments", "config_from_args", "run"]


def eit_vae(smoke: bool = False) -> TrainConfig:
    if smoke:
        return TrainConfig(
            ModelConfig("vae", latent_dim=8, image_size=16, channels=(16, 8, 8), output="linear"),
            DataConfig("lung_phantoms", size=16, n_train=64, n_test=8),
            steps=3, batch_size=8, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2,
        )  # fmt: skip
    return TrainConfig(
        ModelConfig("vae", latent_dim=8, image_size=128, channels=(32, 32, 32, 16, 8, 4), output="linear"),
        DataConfig("lung_phantoms", size=128, n_train=4096, n_test=64),
        steps=2000, batch_size=32, learning_rate=2e-3, warmup_steps=50, beta=0.02,
        eval_every=100, checkpoint_every=100,
    )  # fmt: skip


def eit_clinical_vae(smoke: bool = False) -> TrainConfig:
    if smoke:
        return TrainConfig(
            ModelConfig("vae", latent_dim=8, image_size=16, channels=(16, 8, 8), output="linear"),
            DataConfig("clinical_mixture", size=16, n_train=64, n_test=9),
            steps=3, batch_size=8, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2,
        )  # fmt: skip
    return TrainConfig(
        ModelConfig("vae", latent_dim=32, image_size=64, channels=(64, 32, 32, 16, 8), output="linear",
                    subspace=True),
        DataConfig("clinical_mixture", size=64, n_train=9000, n_test=180),
        steps=6000, batch_size=64, learning_rate=5e-4, warmup_steps=100, beta=7e-4,
        eval_every=500, checkpoint_every=200,
    )  # fmt: skip


def mri_vae(smoke: bool = False) -> TrainConfig:
    if smoke:
        return TrainConfig(
            ModelConfig("vae", latent_dim=16, image_size=16, channels=(16, 8, 8), output="linear", subspace=True),
            DataConfig("synthetic_mri", size=16, n_train=64, n_test=8),
            steps=3, batch_size=8, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2,
        )  # fmt: skip
    return TrainConfig(
        ModelConfig("vae", latent_dim=256, image_size=128, channels=(32, 32, 32, 16, 16, 8), output="linear",
                    subspace=True),
        DataConfig("synthetic_mri", size=128, n_train=32000, n_test=256),
        steps=12000, batch_size=32, learning_rate=3e-4, warmup_steps=100, beta=0.007,
        eval_every=500, checkpoint_every=100,
    )  # fmt: skip


def mri_gan_64(smoke: bool = False) -> TrainConfig:
    if smoke:
        return TrainConfig(
            ModelConfig("gan", latent_dim=16, image_size=16, channels=(16, 8, 8)),
            DataConfig("mri_slices", size=16, n_train=64, n_test=8),
            steps=3, batch_size=8, warmup_steps=1, log_every=1, eval_every=2, checkpoint_every=2,
        )  # fmt: skip
    return TrainConfig(
        ModelConfig("gan", latent_dim=16, image_size=64, channels=(64, 64, 32, 16, 8)),
        DataConfig("mri_slices", size=64, n_train=4096, n_test=16),
        steps=1500, batch_size=32, learning_rate=5e-4, warmup_steps=50, r1_gamma=1.0,
        eval_every=500, checkpoint_every=100,
    )  # fmt: skip


def mri_gan(smoke: bool = False) -> TrainConfig:
    vae = mri_vae(smoke=smoke)
    vaegan = dataclasses.replace(vae, model=dataclasses.replace(vae.model, architecture="vaegan"))
    if smoke:
        return vaegan
    return dataclasses.replace(
        vaegan, init_from="mri-vae", steps=4000, learning_rate=1e-4, warmup_steps=50, adversarial_weight=0.25,
        spectral_weight=1.0, eval_every=250, checkpoint_every=50,
    )  # fmt: skip


CONFIGS = {
    "eit-vae": eit_vae,
    "eit-clinical-vae": eit_clinical_vae,
    "mri-vae": mri_vae,
    "mri-gan-64": mri_gan_64,
    "mri-gan": mri_gan,
}


def mri_vae_gpu(smoke: bool = False) -> TrainConfig:
    """``mri-vae`` for a GPU round: the same k = 256 PPCA + residual decoder (so the same < 20 MB
    budget), residual channels doubled, twice the images and four times the batch. The steps are
    set by ``experiments/train_gpu.py`` from the measured rate."""
    if smoke:
        return mri_vae(smoke=True)
    cfg = mri_vae()
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, channels=(64, 64, 64, 32, 32, 16)),
        data=dataclasses.replace(cfg.data, n_train=16000),
        batch_size=128, warmup_steps=200, steps=20000, eval_every=1000, checkpoint_every=500,
    )  # fmt: skip


def eit_clinical_vae_gpu(smoke: bool = False) -> TrainConfig:
    """``eit-clinical-vae`` for a GPU round: the same k = 32 decoder, twice the images, four times the batch."""
    if smoke:
        return eit_clinical_vae(smoke=True)
    return dataclasses.replace(
        eit_clinical_vae(),
        data=DataConfig("clinical_mixture", size=64, n_train=18000, n_test=180),  # N x N Gram eigh of the PPCA start
        batch_size=256, steps=20000, eval_every=1000, checkpoint_every=500,
    )  # fmt: skip


GPU_CONFIGS = {"mri-vae": mri_vae_gpu, "eit-clinical-vae": eit_clinical_vae_gpu}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every train script takes."""
    parser.add_argument("--workdir", type=Path, required=True, help="checkpoints and metrics.jsonl go here")
    parser.add_argument("--steps", type=int, default=None, help="train up to this step (default: the config's)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    parser.add_argument("--smoke", action="store_true", help="tiny 16x16 setting (seconds, for tests)")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget; checkpoint and stop")
    parser.add_argument("--schedule-steps", type=int, default=None, help="length of the LR cosine decay")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--export", type=Path, default=None, help="export the final generator + model card here")
    return parser


def config_from_args(name: str, args: argparse.Namespace) -> TrainConfig:
    """``CONFIGS[name]`` with the command-line overrides applied."""
    cfg = CONFIGS[name](smoke=args.smoke)
    overrides = {"max_minutes": args.max_minutes, "progress": False if args.no_progress else None}
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.schedule_steps is not None:
        overrides["schedule_steps"] = args.schedule_steps
    return dataclasses.replace(cfg, **overrides)


def describe(cfg: TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=1)


def run(name: str, description: str, argv=None) -> None:
    """The ``main()`` of each train script: parse the shared command line, train, optionally export."""
    args = add_arguments(argparse.ArgumentParser(description=description)).parse_args(argv)
    cfg = config_from_args(name, args)
    result = train(cfg, args.workdir, resume=args.resume)
    print(f"{name}: step {result.step}, {result.wall_seconds:.0f} s, held-out {result.metrics}")
    if args.export is not None:
        card = export_generator(args.workdir, args.export, name=name, overwrite=True)
        print(f"exported to {args.export}: held-out {card['heldout']}")
