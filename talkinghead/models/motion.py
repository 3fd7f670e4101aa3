"""Learned head motion and blinks: a conditional sequential VAE for head pose, a hazard model for blinks.

Pose (yaw, pitch, roll, x, y; normalised per axis) is generated at 25 fps from a latent per chunk of
`chunk` frames (160 ms at 4): an autoregressive prior p(z_k | z_<k, speech) proposes the chunk's
latent and a GRU decoder turns the latents and the per-frame speech cues into smooth pose. A latent per
chunk rather than per frame keeps sampled motion smooth (no frame-to-frame jitter from sampling noise)
while the prior's randomness gives each seed its own, equally plausible motion.

Blinks are short discrete events (3-10 frames), which a regression decoder smears into half-closed
eyes, so they get their own model: a small GRU over the speech cues and the time since the last blink
predicts the probability that a blink starts at each frame (a learned, speech-dependent hazard with a
learned refractory effect). Sampling the hazard gives blink times; their durations are drawn from the
real blinks' quantiles (a buffer here) and drawn with a fast-close, slow-open lid profile (motion/learned.py).

Array conventions: speech cues (B, T, n_audio) float32 from `audio.features.prosody` plus one column
saying whether audio is present (1) or masked (0, for motion clips without speech); pose (B, T, 5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MotionConfig:
    n_audio: int = 14  # prosody cues + audio-present flag
    n_pose: int = 5
    chunk: int = 4  # frames per latent
    z_dim: int = 8
    enc_hidden: int = 64
    prior_hidden: int = 64
    dec_hidden: int = 96
    blink_hidden: int = 32

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class MotionVAE(nn.Module):
    """Conditional sequential VAE over head pose with a learned autoregressive prior."""

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.enc = nn.GRU(c.n_pose + c.n_audio, c.enc_hidden, batch_first=True, bidirectional=True)
        self.enc_out = nn.Linear(2 * c.enc_hidden, 2 * c.z_dim)
        # prior input: previous latent + this chunk's speech cues (mean over the chunk) + the next chunk's
        self.prior = nn.GRU(c.z_dim + 2 * c.n_audio, c.prior_hidden, batch_first=True)
        self.prior_out = nn.Linear(c.prior_hidden, 2 * c.z_dim)
        self.dec = nn.GRU(c.z_dim + c.n_audio, c.dec_hidden, batch_first=True)
        self.dec_out = nn.Linear(c.dec_hidden, c.n_pose)

    def chunk_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, K, 2 * n_audio): each chunk's mean cues and the next chunk's (look-ahead of one chunk)."""
        b, t, d = audio.shape
        k = t // self.cfg.chunk
        m = audio[:, : k * self.cfg.chunk].reshape(b, k, self.cfg.chunk, d).mean(2)
        nxt = torch.cat([m[:, 1:], m[:, -1:]], 1)
        return torch.cat([m, nxt], -1)

    def posterior(self, pose: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z_k | pose, speech), (B, K, z_dim) each."""
        h, _ = self.enc(torch.cat([pose, audio], -1))
        b, t, d = h.shape
        k = t // self.cfg.chunk
        h = h[:, : k * self.cfg.chunk].reshape(b, k, self.cfg.chunk, d).mean(2)
        mu, logvar = self.enc_out(h).chunk(2, -1)
        return mu, logvar.clamp(-8, 4)

    def prior_params(
        self, z_prev: torch.Tensor, audio_chunks: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """p(z_k | z_<k, speech) for a run of chunks given the previous latents (teacher forcing or one step)."""
        h, state = self.prior(torch.cat([z_prev, audio_chunks], -1), state)
        mu, logvar = self.prior_out(h).chunk(2, -1)
        return mu, logvar.clamp(-8, 4), state

    def decode(self, z: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Pose (B, K * chunk, n_pose) from latents (B, K, z_dim) and per-frame cues."""
        zf = z.repeat_interleave(self.cfg.chunk, dim=1)
        t = zf.shape[1]
        h, _ = self.dec(torch.cat([zf, audio[:, :t]], -1))
        return self.dec_out(h)

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """Pose (B, T', n_pose) for cues (B, T, n_audio), T' = T rounded down to whole chunks."""
        ac = self.chunk_audio(audio)
        b, k, _ = ac.shape
        z_prev = torch.zeros(b, 1, self.cfg.z_dim)
        state = None
        zs = []
        for i in range(k):
            mu, logvar, state = self.prior_params(z_prev, ac[:, i : i + 1], state)
            eps = torch.randn(mu.shape, generator=generator)
            z_prev = mu + temperature * torch.exp(0.5 * logvar) * eps
            zs.append(z_prev)
        return self.decode(torch.cat(zs, 1), audio)


class BlinkHazard(nn.Module):
    """Per-frame logit that a blink starts: a speech term (GRU over the cues) plus a refractory term
    (small MLP of the time since the last blink). Additive, so at sampling time the speech term runs
    once over the clip and only a table lookup depends on the blinks drawn so far."""

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.rnn = nn.GRU(cfg.n_audio, cfg.blink_hidden, batch_first=True)
        self.out = nn.Linear(cfg.blink_hidden, 1)
        self.refractory = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))

    def speech_logit(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) speech-dependent part of the logit."""
        h, _ = self.rnn(audio)
        return self.out(h).squeeze(-1)

    def since_logit(self, since_s: torch.Tensor) -> torch.Tensor:
        """Refractory part of the logit for times since the last blink (s), any shape."""
        f = torch.stack([torch.clamp(since_s / 1.0, max=3.0), torch.clamp(since_s / 6.0, max=2.0)], -1)
        return self.refractory(f).squeeze(-1)

    def forward(self, audio: torch.Tensor, since_s: torch.Tensor) -> torch.Tensor:
        return self.speech_logit(audio) + self.since_logit(since_s)


class MotionModel(nn.Module):
    """Both parts together, so one safetensors file holds them."""

    pose_std: torch.Tensor
    blink_durations: torch.Tensor

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pose = MotionVAE(cfg)
        self.blink = BlinkHazard(cfg)
        # per-axis scale of normalised pose (deg, deg, deg, iod, iod) and real blink statistics
        self.register_buffer("pose_std", torch.ones(cfg.n_pose))
        self.register_buffer("blink_durations", torch.full((32,), 0.2))  # quantiles of real closed-eye spans (s)
