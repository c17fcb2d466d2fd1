"""Batch inference: one model over a whole dataset, as a gen_qa evaluation job or a Bedrock batch job."""
