"""The stages runs are made of, one small module each; a flow builds a graph of them (``flows/graph.py`` runs it).

``prepare_data`` (split, transform, upload), ``baseline`` (the base model's evaluation), ``reward`` (which reward
RFT uses, checked before it is paid for), ``reward_lambda`` (deploy and verify it), ``training`` (one training
job per stage: SFT, DPO, RFT, CPT), ``evaluation`` (the evaluation after a stage), ``compare`` (paired deltas),
``gate`` (the significance gate and the approval), ``deploy``, ``smoke``, ``cleanup``; ``jobs`` runs one job to the
end for all of them, ``run_log`` keeps what the run did. A stage's key (``sft``, ``post-sft``) is its one name:
in the log, the job record, MLflow, the report and the timeline.
"""
