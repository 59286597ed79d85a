"""Estimator (builds windows, trains with Lightning) and predictor (turns a fitted network into forecasts)."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from torch.utils.data import DataLoader

from models.features import (
    CATEGORY_COLUMNS,
    COVARIATE_COLUMNS,
    add_covariates,
    future_rows,
    reference_prices,
)
from models.forecast_frame import MEAN, SERIES_KEY, quantile_column
from models.lstm.config import LSTMConfig
from models.lstm.lightning_module import LSTMQuantileLightningModule
from models.lstm.module import LSTMQuantileNetwork
from models.lstm.windows import (
    SeriesPanel,
    WindowDataset,
    already_batched,
    budget_sampler,
    build_panel,
    gather_windows,
    in_sample_scales,
    training_window_starts,
    window_weights,
)
from replenish.frequency import DAILY, Frequency, frequency_of

UNSEEN_CATEGORY_INDEX = 0


class _WithoutLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


# Two notices Lightning 2.6 prints on every fit that say nothing about the fit, filtered by their text so
# that every other message still shows: the LitLogger advertisement (logger_connector.py; no setting turns
# it off), and torch's FutureWarning on the LeafSpec that Lightning's _pytree still builds
# (Lightning-AI/pytorch-lightning#21326).
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_WithoutLitLoggerTip())
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)


class TrainingCurvesLogger(MLFlowLogger):
    """Lightning's MLflow logger for the training curves alone.  The run's parameters are its settings,
    logged once by the flow; Lightning would log the network's again, as network_kwargs/…"""

    def log_hyperparams(self, params: object, *args: object, **kwargs: object) -> None:
        return None


def training_curves_logger(tracking_uri: str, run_id: str | None) -> TrainingCurvesLogger | bool:
    """The logger a fit's curves go to: the MLflow run `run_id`, or none (False) without one."""
    return TrainingCurvesLogger(tracking_uri=tracking_uri, run_id=run_id) if run_id else False


LAST_CHECKPOINT = "last.ckpt"


class EpochWeights(Callback):
    """The network's weights after the ``count`` epochs of lowest validation loss so far, for averaging.

    They are callback state, so every checkpoint holds them: a fit resumed after a kill averages over the
    epochs before the kill too.  Only ``count`` are kept, so a checkpoint grows by that many copies at most.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.epochs: list[tuple[float, dict[str, torch.Tensor]]] = []  # (val_loss, weights), lowest loss first

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        weights = {name: value.detach().cpu().clone() for name, value in pl_module.network.state_dict().items()}
        loss = float(trainer.callback_metrics["val_loss"])
        self.epochs = sorted([*self.epochs, (loss, weights)], key=lambda epoch: epoch[0])[: self.count]

    def averaged(self) -> dict[str, torch.Tensor]:
        """The mean weights of the epochs kept (fewer than ``count`` where the fit ran fewer)."""
        kept = [weights for _, weights in self.epochs]
        return {name: torch.stack([weights[name] for weights in kept]).mean(dim=0) for name in kept[0]}

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Kept under this fit's count: a resumed fit may average fewer epochs than the one it resumes.
        self.epochs = state_dict["epochs"][: self.count]


@dataclass
class LSTMPredictor:
    networks: list[LSTMQuantileNetwork]  # ensemble members, fitted from different seeds
    config: LSTMConfig
    horizon: int  # periods forecast after the history's last date
    quantiles: tuple[float, ...]  # the levels of the q<level> columns
    vocabularies: dict[str, dict[str, int]]  # category column -> id value -> embedding index (0: unseen)
    reference_price: pd.Series = field(repr=False)
    frequency: Frequency = DAILY  # the periods it learned on; it forecasts only data of the same

    def predict(self, history: pd.DataFrame, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """Quantile forecasts for the ``horizon`` periods after each series' last history date.

        ``history``: long sales (item_id, store_id, date, units, price, promo, event[, available]).
        ``future``: planned covariates for those periods; by default the last price, no promotion, no event.
        Returns one row per series and period: item_id, store_id, date, mean, q<level>... (units, clipped at 0).
        """
        horizon = self.horizon
        given = frequency_of(history["date"])
        if history["date"].nunique() > 1 and given != self.frequency:
            raise ValueError(f"the model learned on {self.frequency.description} sales; these are {given.description}")
        future = future_rows(history, horizon) if future is None else future
        combined = pd.concat([history, future.assign(units=np.nan)], ignore_index=True)
        anchors = reference_prices(history).combine_first(self.reference_price)
        combined = add_covariates(combined, anchors)
        panel = build_panel(combined, self.config.context_length)

        # [series] each panel row's last history date
        last_history = history.groupby(SERIES_KEY)["date"].max().reindex(pd.MultiIndex.from_frame(panel.series.keys))
        first_future = panel.position(last_history.to_numpy()) + 1
        rows = np.arange(len(panel.series))
        batch = gather_windows(panel, rows, first_future, horizon)
        categories = torch.from_numpy(category_indices(panel, self.vocabularies))
        members = []
        with torch.no_grad():
            for network in self.networks:
                network.eval()
                members.append(
                    network(
                        batch["past_target"],
                        batch["past_observed"],
                        batch["past_covariates"],
                        batch["future_covariates"],
                        categories,
                    )
                )
        # Members are averaged quantile by quantile (Vincentization): the average of non-crossing
        # quantile curves is non-crossing, and it keeps each member's spread.
        scale = members[0][2]  # [series], the same for every member: it depends on the input only
        scaled_mean = torch.stack([member[0] for member in members]).mean(dim=0)  # [series, horizon]
        scaled_quantiles = torch.stack([member[1] for member in members]).mean(dim=0)  # [series, horizon, quantiles]
        mean = (scaled_mean * scale[:, None]).clamp(min=0).numpy()  # [series, horizon]
        quantiles = (scaled_quantiles * scale[:, None, None]).clamp(min=0).numpy()  # [series, horizon, quantiles]

        last_period = self.frequency.ordinals(pd.DatetimeIndex(last_history.to_numpy()))  # [series]
        dates = self.frequency.dates((last_period[:, None] + np.arange(1, horizon + 1)).ravel())  # [series * horizon]
        # [series * horizon] rows, series by series: each panel row's item_id and store_id, repeated per period.
        forecast = panel.series.keys_of(np.repeat(np.arange(len(panel.series)), horizon)).assign(
            date=dates, **{MEAN: mean.ravel()}
        )
        for position, level in enumerate(self.quantiles):
            forecast[quantile_column(level)] = quantiles[:, :, position].ravel()
        return forecast

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for index, network in enumerate(self.networks):
            torch.save(network.state_dict(), directory / f"network_{index}.pt")
        metadata = {
            "config": asdict(self.config),
            "horizon": self.horizon,
            "frequency": self.frequency.alias,
            "quantiles": list(self.quantiles),
            "vocabularies": self.vocabularies,
            # [[item_id, store_id, price or null], ...]
            "reference_prices": [
                [item_id, store_id, None if pd.isna(price) else float(price)]
                for (item_id, store_id), price in self.reference_price.items()
            ],
        }
        (directory / "predictor.json").write_text(json.dumps(metadata, indent=1))

    @classmethod
    def load(cls, directory: Path) -> LSTMPredictor:
        metadata = json.loads((directory / "predictor.json").read_text())
        # Networks saved before the scale window was a setting were scaled by their whole context.
        config = LSTMConfig(**{"scale_window": "context", **metadata["config"]})
        horizon, quantiles = metadata["horizon"], tuple(metadata["quantiles"])
        frequency = Frequency(metadata["frequency"])
        networks = []
        for index in range(config.ensemble_size):
            network = LSTMQuantileNetwork(
                **network_arguments(config, horizon, len(quantiles), metadata["vocabularies"], frequency)
            )
            network.load_state_dict(torch.load(directory / f"network_{index}.pt", weights_only=True))
            networks.append(network)
        reference_price = _reference_prices_of(metadata)
        return cls(networks, config, horizon, quantiles, metadata["vocabularies"], reference_price, frequency)


def _reference_prices_of(metadata: dict) -> pd.Series:
    """The saved reference prices, indexed by (item_id, store_id)."""
    table = pd.DataFrame(metadata["reference_prices"], columns=[*SERIES_KEY, "reference_price"])
    return table.astype({"reference_price": float}).set_index(SERIES_KEY)["reference_price"]


def build_vocabularies(panel: SeriesPanel) -> dict[str, dict[str, int]]:
    return {
        name: {value: index + 1 for index, value in enumerate(sorted(set(panel.categories[:, position])))}
        for position, name in enumerate(CATEGORY_COLUMNS)
    }


def category_indices(panel: SeriesPanel, vocabularies: dict[str, dict[str, int]]) -> np.ndarray:
    """[series, categories] embedding index of each series' ids; ids not seen in training get 0."""
    return np.column_stack(
        [
            [vocabularies[name].get(value, UNSEEN_CATEGORY_INDEX) for value in panel.categories[:, position]]
            for position, name in enumerate(CATEGORY_COLUMNS)
        ]
    ).astype(np.int64)


def network_arguments(
    config: LSTMConfig,
    horizon: int,
    n_quantiles: int,
    vocabularies: dict[str, dict[str, int]],
    frequency: Frequency,
) -> dict:
    return {
        "category_cardinalities": [len(vocabularies[name]) + 1 for name in CATEGORY_COLUMNS],
        "n_covariates": len(COVARIATE_COLUMNS),
        "horizon": horizon,
        "n_quantiles": n_quantiles,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "embedding_dim": config.embedding_dim,
        "dropout": config.dropout,
        "rolling_windows": frequency.rolling_windows,
        "lags": frequency.seasonal_lags,
        "scale_window": frequency.rolling_windows[-1] if config.scale_window == "recent" else None,
    }


class LSTMEstimator:
    """Fits the network with Lightning, to forecast ``horizon`` periods at the ``quantiles`` levels; member
    i of an ensemble starts from ``seed + i``. Checkpoints go to ``checkpoint_dir``; when ``resume`` is set
    and that folder holds a last checkpoint (an interrupted fit of the same data and settings), training
    goes on from it instead of starting over."""

    def __init__(
        self,
        config: LSTMConfig,
        horizon: int,
        quantiles: tuple[float, ...],
        seed: int,
        checkpoint_dir: Path,
        logger: pl.loggers.Logger | bool = False,
        resume: bool = False,
        callbacks: list[Callback] | None = None,
        show_progress: bool = True,
    ) -> None:
        self.config = config
        self.horizon = horizon
        self.quantiles = tuple(quantiles)
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.logger = logger
        self.resume = resume
        self.callbacks = callbacks or []
        self.show_progress = show_progress
        self.is_global_zero = True  # False in the other processes of a data-parallel fit
        self.resumed_from_epoch: int | None = None
        self.training_windows = 0  # windows the fit could draw from
        self.windows_per_epoch = 0  # windows it drew in each epoch
        self.epochs_run = 0  # summed over ensemble members

    def _member_checkpoint_dir(self, member: int) -> Path:
        # The first member's checkpoints sit in checkpoint_dir itself: a single model needs no subfolder.
        return self.checkpoint_dir if member == 0 else self.checkpoint_dir / f"member_{member}"

    def _resume_checkpoint(self, member_dir: Path) -> Path | None:
        last = member_dir / LAST_CHECKPOINT
        if not (self.resume and last.exists()):
            return None
        resumed_from = int(torch.load(last, map_location="cpu", weights_only=False)["epoch"]) + 1
        self.resumed_from_epoch = self.resumed_from_epoch if self.resumed_from_epoch is not None else resumed_from
        return last

    def fit(self, features: pd.DataFrame) -> LSTMPredictor:
        """Train on every series in ``features`` (long sales with covariates); the last ``horizon``
        periods are held out as the validation window for early stopping."""
        config, horizon = self.config, self.horizon
        panel = build_panel(features, config.context_length)
        frequency = panel.frequency
        if max(frequency.seasonal_lags) > config.context_length:
            raise ValueError(
                f"context_length {config.context_length} is shorter than the {max(frequency.seasonal_lags)} "
                f"{frequency.name}s the network looks back for {frequency.description} data"
            )
        vocabularies = build_vocabularies(panel)
        categories = category_indices(panel, vocabularies)

        last_position = panel.target.shape[1] - 1
        validation_start = last_position - horizon + 1
        # Strides and the training span are set in days; a week or a month is the shortest step.
        stride = max(1, round(config.window_stride_days / frequency.days_per_period))
        train_rows, train_starts = training_window_starts(
            panel, horizon, stride, last_target_position=validation_start - 1
        )
        if config.max_training_days is not None:
            recent = train_starts > validation_start - frequency.periods_in_days(config.max_training_days)
            train_rows, train_starts = train_rows[recent], train_starts[recent]
        val_rows, val_starts = training_window_starts(panel, horizon, horizon, last_target_position=last_position)
        on_validation_start = val_starts == validation_start
        val_rows, val_starts = val_rows[on_validation_start], val_starts[on_validation_start]
        if len(train_rows) == 0 or len(val_rows) == 0:
            raise ValueError(
                f"too little history to train: need more than {2 * horizon} {frequency.name}s per series "
                f"(horizon {horizon} for validation plus at least one training window)"
            )
        self.training_windows = len(train_rows)
        # The validation window's units are not part of the in-sample scale, as in the backtest.
        loss_scales = in_sample_scales(panel, validation_start - 1)

        self.windows_per_epoch = min(len(train_rows), config.windows_per_epoch or len(train_rows))
        train_order: dict[str, object] = {"shuffle": True}
        if self.windows_per_epoch < len(train_rows):
            half_life = config.window_half_life_days and config.window_half_life_days / frequency.days_per_period
            weights = window_weights(panel, train_rows, train_starts, validation_start - 1, half_life)
            train_order = {"sampler": budget_sampler(weights, self.windows_per_epoch, self.seed)}
        loaders = [
            DataLoader(
                WindowDataset(panel, rows, starts, horizon, categories, loss_scales),
                batch_size=config.batch_size,
                collate_fn=already_batched,
                num_workers=0,  # workers cost far more than they save on 2 cores
                **order,
            )
            for rows, starts, order in (
                (train_rows, train_starts, train_order),
                (val_rows, val_starts, {"shuffle": False}),
            )
        ]
        networks = [
            self._fit_member(member, loaders, vocabularies, frequency) for member in range(config.ensemble_size)
        ]
        return LSTMPredictor(
            networks, config, horizon, self.quantiles, vocabularies, reference_prices(features), frequency
        )

    def _fit_member(
        self,
        member: int,
        loaders: list[DataLoader],
        vocabularies: dict[str, dict[str, int]],
        frequency: Frequency,
    ) -> LSTMQuantileNetwork:
        config = self.config
        pl.seed_everything(self.seed + member, workers=True, verbose=False)
        member_dir = self._member_checkpoint_dir(member)
        module = LSTMQuantileLightningModule(
            network_kwargs=network_arguments(config, self.horizon, len(self.quantiles), vocabularies, frequency),
            quantiles=list(self.quantiles),
            learning_rate=config.learning_rate,
            mean_loss_weight=config.mean_loss_weight,
            metric_scaled_loss=config.metric_scaled_loss,
            cosine_decay_epochs=config.max_epochs if config.cosine_learning_rate else None,
        )
        checkpoint = ModelCheckpoint(dirpath=member_dir, monitor="val_loss")
        # Every epoch, improving or not: a fit killed mid-way resumes from the epoch it reached, not from
        # its last improvement (Lightning's save_last only follows the monitored checkpoint's saves).
        every_epoch = ModelCheckpoint(
            dirpath=member_dir,
            filename=LAST_CHECKPOINT.removesuffix(".ckpt"),
            save_top_k=1,
            enable_version_counter=False,
        )
        # Only a fit that averages keeps copies of epochs' weights.
        epoch_weights = [EpochWeights(config.averaged_epochs)] if config.averaged_epochs > 1 else []
        trainer = pl.Trainer(
            **{
                "log_every_n_steps": 5,
                "deterministic": True,
                "enable_model_summary": False,
                "enable_progress_bar": self.show_progress,
                **config.trainer_options,  # the user's Trainer options over these
                "max_epochs": config.max_epochs,
                "callbacks": [
                    EarlyStopping(monitor="val_loss", patience=config.early_stopping_patience),
                    checkpoint,
                    every_epoch,
                    *epoch_weights,
                    *self.callbacks,
                ],
                # One member's curves: several members logging the same metric names would interleave.
                "logger": self.logger if member == 0 else False,
            }
        )
        train_loader, val_loader = loaders
        trainer.fit(module, train_loader, val_loader, ckpt_path=self._resume_checkpoint(member_dir))
        self.is_global_zero = trainer.is_global_zero
        self.epochs_run += trainer.current_epoch
        best = LSTMQuantileLightningModule.load_from_checkpoint(checkpoint.best_model_path, map_location="cpu")
        network = best.network.cpu()
        if epoch_weights and epoch_weights[0].epochs:
            network.load_state_dict(epoch_weights[0].averaged())
        return network
