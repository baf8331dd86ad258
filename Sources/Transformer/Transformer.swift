// Module Transformer: see docs/architecture.md.
