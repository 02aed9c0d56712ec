"""Repository scripts (not shipped):
`python -m scripts.golden`, `python -m scripts.builtin_protos`.
"""
