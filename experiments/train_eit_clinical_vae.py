"""Train the clinical EIT VAE (64x64, k = 32, the clinical phantom mixture); see ``experiments/configs/train.py``.

    python experiments/train_eit_clinical_vae.py --workdir runs/eit-clinical-vae --max-minutes 60
    python experiments/train_eit_clinical_vae.py --workdir runs/eit-clinical-vae --resume --export checkpoints/eit-clinical-vae
"""

from configs.train import run

NAME = "eit-clinical-vae"


def main(argv=None):
    run(NAME, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
