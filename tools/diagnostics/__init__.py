"""One-off checks behind findings recorded in docs/validation.md; each prints what it measured."""
