"""The embedded AWS: moto, novaflow's patches, the server, its routes and control API, Lambda execution."""
