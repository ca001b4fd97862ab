"""The experiment spec: experiment, parameters, registries, folder scanning, studies."""
