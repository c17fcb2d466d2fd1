"""The RFT reward Lambda seen from novaflow: package it, deploy it with least privilege, verify it before RFT."""
