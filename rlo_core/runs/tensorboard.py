"""Optional TensorBoard event files beside metrics.jsonl, for users who already use TensorBoard.

Event writing goes through `torch.utils.tensorboard.SummaryWriter`, which needs the
`tensorboard` package. Without it, one warning is logged and `log()` does nothing, so a
training command never fails because TensorBoard is missing.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Record fields that are positions, not values to plot.
SKIPPED_KEYS = frozenset({"time", "step", "epoch", "split"})


class TensorBoardWriter:
    """Scalar writer with tags `<split>/<metric>` (for example `val/acc`).

    With `enabled=False` (no --tensorboard, or a rank other than 0) it writes nothing and
    logs nothing. `available` is True while event files are being written.
    """

    def __init__(self, log_dir: Path, enabled: bool = True):
        self.log_dir = Path(log_dir)
        self.available = False
        self._writer: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.warning("TensorBoard event files are off: the 'tensorboard' package is not "
                        "installed. Install it with 'pip install tensorboard' to use --tensorboard. "
                        "Metrics are still written to metrics.jsonl.")
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self.available = True
        log.info("Writing TensorBoard event files to %s (view with 'tensorboard --logdir %s').",
                 self.log_dir, self.log_dir)

    def log(self, step: int, split: str, values: dict[str, Any]) -> int:
        """Add one scalar per numeric value; returns how many scalars were written."""
        if self._writer is None:
            return 0
        written = 0
        for key, value in values.items():
            if key in SKIPPED_KEYS or isinstance(value, bool):
                continue
            if hasattr(value, "item"):  # one-element tensors and numpy scalars
                try:
                    value = value.item()
                except (ValueError, RuntimeError):  # more than one element: not a scalar
                    continue
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            self._writer.add_scalar(f"{split}/{key}", float(value), global_step=step)
            written += 1
        return written

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> "TensorBoardWriter":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def open_tensorboard(run_dir: Path, enabled: bool) -> TensorBoardWriter:
    """Return a writer for `<run_dir>/tensorboard` (a no-op one when `enabled` is False)."""
    return TensorBoardWriter(Path(run_dir) / "tensorboard", enabled=enabled)
