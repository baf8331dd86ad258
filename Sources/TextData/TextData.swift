// Module TextData: see docs/architecture.md.
