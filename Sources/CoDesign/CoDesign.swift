// Module CoDesign: see docs/architecture.md.
