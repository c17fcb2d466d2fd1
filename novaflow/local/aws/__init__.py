"""The embedded AWS: moto, our patches to it, the server, its routes and control API, and Lambda execution."""
