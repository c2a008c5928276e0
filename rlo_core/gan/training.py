"""One GAN training step and the state a resume restores.

Each step runs StyleGAN2-ADA's phases in order: generator (non-saturating loss on fakes),
discriminator (loss on fakes and reals), and every `r1_interval` steps the lazy R1 penalty
(gamma / 2) * ||d D(x) / d x||^2 on reals, multiplied by the interval. As in StyleGAN2, the
discriminator's Adam learning rate and betas are scaled by interval / (interval + 1) to make up
for the extra R1 steps. The EMA generator follows G with a half-life of `ema_kimg` thousand
images (ramped up over the first images with `ema_rampup`).
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor

from rlo_core.errors import CheckpointError, NonFiniteLossError
from rlo_core.gan.augment import AdaptiveAugment
from rlo_core.gan.config import GanConfig
from rlo_core.gan.data import GanData, real_batch
from rlo_core.gan.losses import discriminator_loss, generator_loss, r1_penalty
from rlo_core.gan.networks import NetworkSpec, build_discriminator, build_generator

CHECKPOINT_VERSION = 1
ADAM_BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8
STAT_NAMES = ("g_loss", "d_loss", "r1", "real_score", "fake_score", "real_sign", "fake_sign")


def amp_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 on CUDA devices that support it, fp16 on older ones, None (fp32) elsewhere."""
    # NOTE: the CUDA autocast and fp16 GradScaler paths have not been run on a GPU yet. The
    # tests cover fp32 training on CPU and the losses under CPU autocast.
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass
class TickStats:
    """Sums of per-step statistics over one tick, for the train records of metrics.jsonl."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, **values: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in STAT_NAMES if key in self.sums}


class GanTrainer:
    def __init__(self, config: GanConfig, spec: NetworkSpec, data: GanData,
                 device: torch.device):
        self.config, self.spec, self.data, self.device = config, spec, data, device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.G = build_generator(spec).to(device).train()
            self.D = build_discriminator(spec).to(device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        initial_p = config.augment_p if config.augment != "none" else 0.0
        self.augment = AdaptiveAugment(adaptive=config.augment == "ada", initial_p=initial_p,
                                       target=config.ada_target,
                                       speed_kimg=config.ada_kimg).to(device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=ADAM_BETAS,
                                      eps=ADAM_EPS)
        ratio = config.r1_interval / (config.r1_interval + 1) if config.r1_gamma > 0 else 1.0
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr * ratio,
                                      betas=tuple(beta ** ratio for beta in ADAM_BETAS),
                                      eps=ADAM_EPS)
        self.amp_dtype = amp_dtype(device, config.amp)
        scaling = self.amp_dtype == torch.float16
        self.scaler_G = torch.amp.GradScaler(device.type, enabled=scaling)
        self.scaler_D = torch.amp.GradScaler(device.type, enabled=scaling)
        self.rng = torch.Generator(device).manual_seed(config.seed)
        self.step = 0
        self.cur_nimg = 0

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _latents(self) -> Tensor:
        return torch.randn(self.config.batch, self.spec.z_dim, device=self.device,
                           generator=self.rng)

    def _discriminate(self, images: Tensor) -> Tensor:
        return self.D(self.augment(images, self.rng))

    def train_step(self) -> dict[str, float]:
        """Run one step on `config.batch` images; return its statistics."""
        config = self.config
        stats: dict[str, float] = {}

        self.D.requires_grad_(False)
        with self._autocast():
            fake_logits = self._discriminate(self.G(self._latents(), generator=self.rng))
        g_loss = generator_loss(fake_logits, loss=config.loss, k=config.k)
        self._check_finite("generator", g_loss)
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(g_loss).backward()
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()
        self.D.requires_grad_(True)
        stats["g_loss"] = float(g_loss.detach())

        reals = real_batch(self.data, seed=config.seed, step=self.step, batch=config.batch,
                           mirror=config.mirror, device=self.device)
        with torch.no_grad(), self._autocast():
            fakes = self.G(self._latents(), generator=self.rng)
        with self._autocast():
            fake_logits = self._discriminate(fakes)
            real_logits = self._discriminate(reals)
        d_loss = discriminator_loss(real_logits, fake_logits, loss=config.loss, k=config.k)
        self._check_finite("discriminator", d_loss)
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler_D.scale(d_loss).backward()
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()
        self.augment.accumulate(real_logits)
        real_logits, fake_logits = real_logits.detach().float(), fake_logits.detach().float()
        stats.update(d_loss=float(d_loss.detach()), real_score=float(real_logits.mean()),
                     fake_score=float(fake_logits.mean()),
                     real_sign=float(real_logits.sign().mean()),
                     fake_sign=float(fake_logits.sign().mean()))

        if config.r1_gamma > 0 and self.step % config.r1_interval == 0:
            stats["r1"] = self._r1_step(reals)

        self.augment.step()
        self.step += 1
        self.cur_nimg += config.batch
        self._update_ema()
        return stats

    def _r1_step(self, reals: Tensor) -> float:
        """Lazy R1 step in fp32; returns the mean squared gradient norm."""
        config = self.config
        reals = reals.detach().requires_grad_(True)
        penalty = r1_penalty(reals, self._discriminate(reals))
        loss = penalty.mean() * (config.r1_gamma / 2) * config.r1_interval
        self._check_finite("R1", loss)
        self.opt_D.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_D.step()
        return float(penalty.detach().mean())

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.config.ema_kimg * 1000
        if self.config.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.config.ema_rampup)
        beta = 0.5 ** (self.config.batch / max(ema_nimg, 1e-8))
        for ema_param, param in zip(self.G_ema.parameters(), self.G.parameters()):
            ema_param.copy_(param.detach().lerp(ema_param, beta))
        for ema_buffer, buffer in zip(self.G_ema.buffers(), self.G.buffers()):
            ema_buffer.copy_(buffer)

    def _check_finite(self, phase: str, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"The {phase} loss became {float(loss.detach())} at step {self.step} "
                f"({self.cur_nimg / 1000:.1f} kimg) with --loss {self.config.loss}. Lower --lr, "
                "raise --r1-gamma, or resume from the last snapshot with --resume.")

    # -- resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything a resume restores, as tensors and plain numbers (weights_only-loadable)."""
        return {
            "version": CHECKPOINT_VERSION,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "augment": self.augment.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "scaler_G": self.scaler_G.state_dict(), "scaler_D": self.scaler_D.state_dict(),
            "rng": self.rng.get_state(), "rng_device": self.device.type,
            "step": self.step, "cur_nimg": self.cur_nimg,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"Unsupported GAN checkpoint version {state.get('version')!r}; "
                                  f"this version of rlo reads version {CHECKPOINT_VERSION}.")
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.augment.load_state_dict(state["augment"])
            self.opt_G.load_state_dict(state["opt_G"])
            self.opt_D.load_state_dict(state["opt_D"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise CheckpointError(f"The GAN checkpoint does not match this run's networks: "
                                  f"{str(error)[:300]}") from error
        if state["scaler_G"]:
            self.scaler_G.load_state_dict(state["scaler_G"])
        if state["scaler_D"]:
            self.scaler_D.load_state_dict(state["scaler_D"])
        if state["rng_device"] == self.device.type:
            self.rng.set_state(state["rng"])
        else:
            # A generator's state does not carry over between CPU and CUDA, so a run moved
            # between them continues with a fresh stream from (seed, step).
            self.rng.manual_seed(self.config.seed * 1_000_003 + int(state["step"]))
        self.step = int(state["step"])
        self.cur_nimg = int(state["cur_nimg"])
