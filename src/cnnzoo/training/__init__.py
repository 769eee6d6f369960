"""Training on in-memory data: :func:`train`, :func:`evaluate`, the :class:`Trainer` and the
per-model recipe table (prediction: :func:`cnnzoo.deploy.predict`)."""
from .api import RESUME_APPLIES, TrainResult, evaluate, load_model, load_run, resume_plan, train
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .recipes import RECIPES, recipe_for
from .results import results_table
from .trainer import TrainConfig, TrainConfigError, Trainer, TrainingDivergedError, evaluate_model, lr_at

__all__ = ["train", "evaluate", "load_model", "load_run", "resume_plan", "RESUME_APPLIES",
           "TrainResult", "TrainConfig", "Trainer",
           "TrainingDivergedError", "TrainConfigError", "CheckpointError", "load_checkpoint",
           "save_checkpoint", "evaluate_model", "lr_at", "RECIPES", "recipe_for", "results_table"]
