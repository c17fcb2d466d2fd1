"""The SageMaker model registry: every trained checkpoint as a version with lineage and an approval status."""
