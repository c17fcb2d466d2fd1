"""Nova recipes: recipe templates with override specs, training images, instance and price tables.

Everything here is offline: building a recipe never calls AWS (only ``novaflow recipes sync`` does). The models
and methods recipes are built for are the catalog's (:mod:`novaflow.catalog`).
"""

from novaflow.recipes.build import ResolvedRecipe, build_recipe
from novaflow.recipes.images import image_uri

__all__ = ["ResolvedRecipe", "build_recipe", "image_uri"]
