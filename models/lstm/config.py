"""The LSTM's configuration (settings: forecast.lstm): light to import, as the settings embed it.

The horizon, the quantile levels and the seed are the forecast's, shared with every baseline: the
estimator takes them beside this configuration (settings: forecast.horizon, forecast.quantiles,
forecast.seed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from replenish.bounds import require_in_range

ScaleWindow = Literal["recent", "context"]

# On the CPU, one device, unless forecast.lstm.trainer says otherwise: the same fit on every machine.
TRAINER_DEFAULTS: Mapping[str, Any] = {"accelerator": "cpu", "devices": 1, "strategy": "auto"}


@dataclass(frozen=True)
class LSTMConfig:
    # Periods the network reads; its longest seasonal lag must fit (28 days, 52 weeks, 12 months: the
    # estimator checks it against the data's frequency).
    context_length: int = 56
    hidden_size: int = 32
    num_layers: int = 1
    embedding_dim: int = 8
    # The level each series is scaled by: "recent", its mean over the frequency's longest rolling window
    # (28 days, 13 weeks, 12 months), or "context", over all the periods the network reads.
    scale_window: ScaleWindow = "recent"
    dropout: float = 0.0
    learning_rate: float = 3e-3
    mean_loss_weight: float = 1.0  # squared error of the mean output, beside the pinball loss
    metric_scaled_loss: bool = True  # weigh each series' errors by its in-sample change, as RMSSE does
    cosine_learning_rate: bool = False  # decay the learning rate to 0 over max_epochs
    batch_size: int = 256
    max_epochs: int = 8
    window_stride_days: int = 2
    max_training_days: int | None = None  # only windows from the most recent days; None: all
    # Training windows drawn per epoch, so that an epoch costs the same at 3,000 series as at 30,000 (about
    # 20 s on 2 cores); a budget above the windows there are (M5's 280 series have about 200,000), or None:
    # every window once per epoch.
    windows_per_epoch: int | None = 200_000
    # How the budget is drawn: in proportion to the square root of 1 + the window's series' mean level, so
    # high-volume series come more often, and, when set, halving every this many days of a window's age.
    # On M5's tuning windows a 365-day half-life narrowed the intervals (80% coverage 0.64 against 0.77).
    window_half_life_days: float | None = None
    early_stopping_patience: int = 3
    # The fitted network: the mean of the weights of this many epochs, those of lowest validation loss (1:
    # the best epoch's alone). Averaging neighbouring points of one descent finds a flatter, steadier fit:
    # 3 beat 1 on every metric on the daily and weekly tuning windows, tied RMSSE on the monthly, and cost
    # less in the policy replay's earlier window (README).
    averaged_epochs: int = 3
    ensemble_size: int = 1  # networks fitted from seeds seed, seed + 1, ...; their forecasts are averaged
    # Lightning Trainer options, passed through over TRAINER_DEFAULTS: accelerator, devices, strategy
    # (a "ddp" strategy trains in a process of its own), precision, num_nodes...
    trainer: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        whole = ("hidden_size", "num_layers", "embedding_dim", "batch_size", "max_epochs", "window_stride_days")
        holds = {
            "context_length": self.context_length >= 12,
            **{name: getattr(self, name) >= 1 for name in whole},
            "early_stopping_patience": self.early_stopping_patience >= 1,
            "averaged_epochs": self.averaged_epochs >= 1,
            "ensemble_size": self.ensemble_size >= 1,
            "max_training_days": self.max_training_days is None or self.max_training_days >= 1,
            "windows_per_epoch": self.windows_per_epoch is None or self.windows_per_epoch >= 1,
            "window_half_life_days": self.window_half_life_days is None or self.window_half_life_days > 0,
            "dropout": 0 <= self.dropout < 1,
            "learning_rate": self.learning_rate > 0,
            "mean_loss_weight": self.mean_loss_weight >= 0,
        }
        require_in_range(
            self,
            holds,
            "LSTM settings",
            "context_length at least 12; sizes, epochs, stride, windows_per_epoch, patience, averaged_epochs and "
            "ensemble_size at least 1; dropout in [0, 1); learning_rate and window_half_life_days above 0; "
            "mean_loss_weight at least 0",
        )

    @property
    def trainer_options(self) -> dict[str, Any]:
        return {**TRAINER_DEFAULTS, **self.trainer}

    @property
    def data_parallel(self) -> bool:
        return str(self.trainer_options["strategy"]).startswith("ddp")
