"""What each part must do, checked on a dry batch before a run folder is claimed (docs/parts.md).

G takes a batch of latents (N, G.z_dim) (and class labels (N,) in a conditional GAN) and returns N
samples of the data's shape: images in [-1, 1], points unbounded. D takes N samples (and labels) and
returns one finite score per sample, (N,) or (N, 1). A loss's d_loss(real_scores, fake_scores) and
g_loss(fake_scores) return finite scalars. A part that breaks this gets one line naming its class,
what was expected and what came back.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch

from ganlab.parts.registry import ConfigError

log = logging.getLogger(__name__)
BATCH = 4


def _name(part: Any) -> str:
    part = getattr(part, "__self__", part)  # a bound method: its object
    part = getattr(part, "inner", part)  # a user's loss, as ganlab wrapped it
    kind = part if isinstance(part, type) else type(part)
    return f"{kind.__module__}.{kind.__qualname__}"


def _call(part: Any, role: str, *args: Any) -> Any:
    try:
        return part(*args)
    except Exception as e:
        raise ConfigError(f"{role} {_name(part)} failed on a dry batch of {BATCH} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]})") from None


def check_parts(generator: torch.nn.Module, discriminator: torch.nn.Module, loss: Any, real: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> None:
    """G, D and the loss against a real batch `real` (and its `labels` for a conditional GAN)."""
    shape = tuple(real.shape[1:])
    z_dim = getattr(generator, "z_dim", None)
    if not isinstance(z_dim, int) or z_dim < 1:
        raise ConfigError(f"generator {_name(generator)} has no z_dim (found {z_dim!r}); give it an attribute z_dim, "
                          f"the size of the latent vector it takes")
    per = getattr(discriminator, "pack", 1)  # PacGAN's D scores packs of samples (parts/networks/packing.py)
    real, y = real[:BATCH * per], None if labels is None else labels[:BATCH * per]
    with torch.no_grad():
        z = torch.randn(len(real), z_dim, device=real.device)
        try:
            fake = _call(generator, "generator", *([z] if y is None else [z, y]))
        except ConfigError as e:
            raise ConfigError(f"{e}; ganlab gives G latents of shape (N, z_dim), here {tuple(z.shape)}: a G built for "
                              f"(N, z_dim, 1, 1) begins its forward with z = z.view(len(z), -1, 1, 1)") from None
        expected = f"a tensor of shape ({len(real)}, {', '.join(map(str, shape))})"
        if not isinstance(fake, torch.Tensor) or tuple(fake.shape) != (len(real), *shape):
            got = tuple(fake.shape) if isinstance(fake, torch.Tensor) else type(fake).__name__
            raise ConfigError(f"generator {_name(generator)}: for {len(real)} latents of size {z_dim} it should return "
                              f"{expected} (the data's samples), but returned {got}")
        _finite(fake, "generator", generator)
        if len(shape) == 3 and fake.abs().max() > 1.0 + 1e-3:
            raise ConfigError(f"generator {_name(generator)} returns values up to {fake.abs().max():.3g}; images live in "
                              f"[-1, 1] (end G with a tanh)")
        scores = {}
        for which, batch in (("real", real), ("generated", fake)):
            out = _call(discriminator, "discriminator", *([batch] if y is None else [batch, y]))
            n = len(batch) // per
            if not isinstance(out, torch.Tensor) or out.numel() != n or out.dim() > 2:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ConfigError(f"discriminator {_name(discriminator.net if per > 1 else discriminator)}: for {n} "
                                  f"{which} {'packs' if per > 1 else 'samples'} it should return one score each, "
                                  f"shape ({n},) or ({n}, 1), but returned {got}")
            _finite(out, "discriminator", discriminator)
            scores[which] = out.reshape(-1).float()
    both = torch.cat(list(scores.values()))
    if bool(((both > 0) & (both < 1)).all()):
        log.warning("discriminator %s: every score of a dry batch lies in (0, 1); does it end in a Sigmoid? ganlab's "
                    "losses take D's raw scores (loss=bce and bce_logits apply the sigmoid themselves, hinge and "
                    "wgan_gp need unbounded scores): remove the Sigmoid", _name(discriminator))
    for method, args in (("d_loss", (scores["real"], scores["generated"])), ("g_loss", (scores["generated"], scores["real"])[:1 + loss.pairs])):
        value = _call(getattr(loss, method), f"loss {method} of", *args)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(f"loss {_name(loss)}.{method} should return a scalar tensor, "
                              f"but returned {got}")
        _finite(value, f"loss {method} of", loss)


def _finite(x: torch.Tensor, role: str, part: Any) -> None:
    if not torch.isfinite(x).all():
        raise ConfigError(f"{role} {_name(part)} returned non-finite values (NaN or inf) on a dry batch of {BATCH}")
