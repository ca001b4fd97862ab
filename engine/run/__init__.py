"""Running an experiment: unit types, item computation, driver, batching, leases, calibration, prepare, back ends."""
