"""`History`: what `fit` measured, epoch by epoch (the callback every run records into)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class History:
    """What `fit` measured: one entry per finished epoch in each list."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    stopped_early: str = ""
    #: The CPU threads of the last run: {"mode": "auto"|"fixed"|"library", "threads": n, "why": ...}.
    threads: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """Whether training stopped because the loss became NaN or infinite."""
        return self.stopped_early.startswith("training diverged")

    def append(self, logs: dict[str, Any]) -> None:
        """Record one epoch's figures (`logs`, as callbacks get them)."""
        for key, value in logs.items():
            if key in ("loss", "accuracy", "time"):
                getattr(self, key).append(value)
            elif key != "epoch":
                self.extra.setdefault(key, []).append(value)

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON-able dict (what checkpoints and model files keep)."""
        return {"loss": self.loss, "accuracy": self.accuracy, "time": self.time,
                "extra": self.extra, "stopped_early": self.stopped_early, "threads": self.threads}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        """The History `as_dict` wrote."""
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in d.items()})

    def __len__(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list[float]:
        if key in ("loss", "accuracy", "time"):
            return getattr(self, key)
        return self.extra[key]
