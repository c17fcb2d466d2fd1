"""Recipe templates shipped as package data (a package so setuptools includes the YAML files in the wheel)."""
