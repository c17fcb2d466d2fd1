"""Nova recipes: the model catalog, recipe templates with override specs, instance and price tables.

Everything here is offline: building a recipe never calls AWS (only ``novaflow recipes sync`` does).
"""

from novaflow.recipes.build import ResolvedRecipe, build_recipe
from novaflow.recipes.catalog import MODELS, Method, NovaModel, Platform, get_model, image_uri

__all__ = ["MODELS", "Method", "NovaModel", "Platform", "ResolvedRecipe", "build_recipe", "get_model", "image_uri"]
