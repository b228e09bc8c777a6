"""HTTP resources, one module per resource, each exporting `routes`."""
