"""The real batches: each epoch a seeded shuffle of the data, cut into n_critic batches per G step,
each with its classes when the GAN is conditional."""

from __future__ import annotations

import torch

from ganlab.parts.data import Dataset


class BatchStream:
    def __init__(self, data: Dataset, batch_size: int, n_critic: int, seed: int, channels_last: bool = False,
                 labelled: bool = False):
        self.data, self.batch_size, self.n_critic, self.channels_last = data, batch_size, n_critic, channels_last
        self.labels = data.labels.to(data.x.device) if labelled else None
        self.rng = torch.Generator().manual_seed(seed)  # the data order
        self.order: torch.Tensor | None = None  # this epoch's shuffled sample order
        self.cursor = 0  # where the next batch starts in it

    @property
    def per_step(self) -> int:
        return self.batch_size * self.n_critic

    def steps_left(self) -> int:
        """G steps left in this epoch; a new epoch's seeded order is drawn when none is under way."""
        if self.order is None:
            self.order = torch.randperm(len(self.data), generator=self.rng).to(self.data.x.device)
            self.cursor = 0
        return (len(self.order) - self.cursor) // self.per_step

    def next(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """The next n_critic real batches of this epoch's order, each with its classes (None when unlabelled);
        steps_left() says how many there are."""
        if self.order is None:
            self.steps_left()
        index = self.order[self.cursor:self.cursor + self.per_step]
        batch = self.data.x[index]
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        self.cursor += self.per_step
        labels = self.labels[index].split(self.batch_size) if self.labels is not None else [None] * self.n_critic
        return list(zip(batch.split(self.batch_size), labels))

    def end_epoch(self) -> None:
        """This epoch's data is used up (what is left is less than a step): the next step starts a new one."""
        self.order = None

    def state_dict(self) -> dict:
        return {"rng": self.rng.get_state(), "order": None if self.order is None else self.order.cpu(),
                "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.rng.set_state(state["rng"])
        self.order = None if state["order"] is None else state["order"].to(self.data.x.device)
        self.cursor = state["cursor"]
