"""novaflow: Amazon Nova customization (data, SFT, RFT, evaluation, deployment) as Prefect flows."""

__version__ = "0.1.0"
