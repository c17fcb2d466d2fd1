"""Nova recipes: the service's published tables, recipe templates with override specs, images, instance and price
tables.

Everything here is offline: building a recipe never calls AWS (only ``novaflow recipes sync`` does). The models
and methods recipes are built for are the catalog's (:mod:`novaflow.catalog`).
"""

from novaflow.recipes.build import ResolvedRecipe, build_recipe
from novaflow.recipes.service import image_uri, recipe_for

__all__ = ["ResolvedRecipe", "build_recipe", "image_uri", "recipe_for"]
