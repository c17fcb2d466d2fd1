"""The module the Lambda runtime loads (``lambda_function.lambda_handler``); packaged at the zip root."""

from reward_lambda.handler import lambda_handler

__all__ = ["lambda_handler"]
