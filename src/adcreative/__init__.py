"""adcreative: reliable ad-creative generation, inspection, representation and selection."""

__version__ = "0.1.0"
