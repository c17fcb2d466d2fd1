"""The embedded AWS: moto, the patches that make it behave like AWS, the server, routes and the control API."""
