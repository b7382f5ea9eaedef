"""injectwise: decision support for musculoskeletal corticosteroid injections."""

__version__ = "0.1.0"
