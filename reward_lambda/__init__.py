"""The reward Lambda for Nova RFT: standard library only, so it runs unchanged on the python3.12 runtime.

``labels.extract_label`` is also the one label extractor novaflow's evaluation analysis uses.
"""
