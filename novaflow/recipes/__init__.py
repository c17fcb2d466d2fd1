"""Nova recipes: the service's published tables, recipe templates with override specs, images, instance and price
tables.

Everything here is offline: building a recipe never calls AWS (only ``novaflow recipes sync`` does). The models
and methods recipes are built for are the catalog's (:mod:`novaflow.catalog`). Import from the modules
(``novaflow.recipes.build``, ``.service``, ...): this package re-exports nothing, so reading the published tables
does not load the recipe builder.
"""
