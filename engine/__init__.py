"""The novadocker container engine: a daemon serving a Docker-compatible API."""
