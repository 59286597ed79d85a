"""Training and validation steps around :class:`LSTMQuantileNetwork`."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.types import OptimizerLRScheduler

from models.lstm.module import LSTMQuantileNetwork, pinball_loss, squared_error_loss

# Caps the weight of a nearly constant series, whose in-sample change is close to zero.
MAX_SERIES_WEIGHT = 100.0


class LSTMQuantileLightningModule(pl.LightningModule):
    def __init__(
        self,
        network_kwargs: dict,
        quantiles: list[float],
        learning_rate: float,
        mean_loss_weight: float,
        metric_scaled_loss: bool,
        cosine_decay_epochs: int | None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.network = LSTMQuantileNetwork(**network_kwargs)
        self.quantile_levels: torch.Tensor
        self.register_buffer("quantile_levels", torch.tensor(quantiles, dtype=torch.float32))
        self.learning_rate = learning_rate
        self.mean_loss_weight = mean_loss_weight
        self.metric_scaled_loss = metric_scaled_loss
        self.cosine_decay_epochs = cosine_decay_epochs

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        scaled_mean, scaled_quantiles, scale = self.network(
            batch["past_target"],
            batch["past_observed"],
            batch["past_covariates"],
            batch["future_covariates"],
            batch["categories"],
        )
        scaled_target = batch["future_target"] / scale[:, None]
        mask = batch["future_mask"]  # [batch, horizon]
        squared_mask, absolute_mask = mask, mask
        if self.metric_scaled_loss:
            # The network works in units of the series' level; RMSSE and the scaled pinball loss divide
            # by the series' in-sample one-step change instead. Weighting each window's days by
            # level² / squared change (and level / absolute change) makes the loss the metric.
            squared_change, absolute_change = batch["loss_scales"][:, 0], batch["loss_scales"][:, 1]  # [batch]
            squared_weight = torch.nan_to_num(scale**2 / squared_change, nan=0.0, posinf=MAX_SERIES_WEIGHT)
            absolute_weight = torch.nan_to_num(scale / absolute_change, nan=0.0, posinf=MAX_SERIES_WEIGHT)
            squared_mask = mask * squared_weight.clamp(max=MAX_SERIES_WEIGHT)[:, None]
            absolute_mask = mask * absolute_weight.clamp(max=MAX_SERIES_WEIGHT)[:, None]
        return (
            pinball_loss(scaled_quantiles, scaled_target, absolute_mask, self.quantile_levels),
            squared_error_loss(scaled_mean, scaled_target, squared_mask),
        )

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        pinball, squared_error = self._losses(batch)
        loss = pinball + self.mean_loss_weight * squared_error
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(f"{stage}_pinball", pinball, on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}_mse", squared_error, on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> OptimizerLRScheduler:
        optimizer = torch.optim.Adam(self.parameters(), lr=self.learning_rate)
        if not self.cosine_decay_epochs:
            return optimizer
        # Large steps early, small ones as the fit settles: the last epochs refine instead of jumping around.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.cosine_decay_epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "epoch"}}
