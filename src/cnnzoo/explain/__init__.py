"""``cnnzoo.explain``: why a classifier said what it said. Occlusion as in ZFNet (Zeiler & Fergus
2013, Sec. 4.2), Grad-CAM (Selvaraju et al. 2017) and saliency (Simonyan et al. 2014), computed
with Captum, and the model-randomisation sanity check of Adebayo et al. (2018); docs/explain.md."""
from .api import Subject, class_index, explain, layer_field, load_subject, overlay_png, page_examples
from .maps import (FLAG_RHO, METHODS, SANITY_RULE, STAGES, ExplainError, attribution, auto_layer, find_layers,
                   occlusion_defaults, rank_correlation, sanity_check)

__all__ = ["explain", "Subject", "load_subject", "class_index", "layer_field", "overlay_png", "page_examples",
           "METHODS", "FLAG_RHO", "SANITY_RULE", "STAGES", "ExplainError", "attribution", "auto_layer", "find_layers",
           "occlusion_defaults", "rank_correlation", "sanity_check"]
