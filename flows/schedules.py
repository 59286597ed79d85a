"""The deployments' names and schedules: what `replenish trigger` and prefect.yaml address, in a module
light enough for the CLI to import without the flows (torch, MLflow, GX: seconds)."""

from __future__ import annotations

DAILY_PLANNING_CRON = "0 5 * * *"  # before stores open, after the nightly sales extract lands
WEEKLY_MONITORING_CRON = "0 6 * * 1"  # Monday morning: a full week of actuals to score
SHORT_NAMES = {
    "plan": "replenish-plan/daily-planning",
    "monitor": "replenish-monitor/weekly-monitoring",
    "train": "replenish-train/train-on-demand",
    "main": "replenish-main/main-on-demand",
    "simulate": "replenish-simulate/simulate-on-demand",
}
