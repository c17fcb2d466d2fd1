"""The emulator of the Nova service side: fulfilment per job kind, job state, logs, outputs and serving."""
