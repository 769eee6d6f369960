"""Training on in-memory data: :func:`train`, :func:`evaluate`, the :class:`Trainer` and the
per-model recipe table (prediction: :func:`cnnzoo.deploy.predict`)."""
from ..resolve import load_model, load_run   # public here too: a run is what training makes
from .api import RESUME_APPLIES, TrainResult, evaluate, resume_plan, train
from .._io import CheckpointError, load_checkpoint, save_checkpoint
from .recipes import RECIPES, recipe_for
from .results import results_table
from .config import TrainConfig, TrainConfigError
from .evaluation import evaluate_model
from .trainer import Trainer, TrainingDivergedError, lr_at

__all__ = ["train", "evaluate", "load_model", "load_run", "resume_plan", "RESUME_APPLIES",
           "TrainResult", "TrainConfig", "Trainer",
           "TrainingDivergedError", "TrainConfigError", "CheckpointError", "load_checkpoint",
           "save_checkpoint", "evaluate_model", "lr_at", "RECIPES", "recipe_for", "results_table"]
