"""Built-in architecture specs (YAML), shipped with mnsize as package data."""
