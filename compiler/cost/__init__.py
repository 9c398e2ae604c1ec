"""Cost models: one interface, two targets.

`evaluate(batch, target)` costs a `DesignBatch` (B designs) as torch tensors, for search;
`report(design, target)` costs one IR design for reports and back-ends, through the same
formulas (and, for imported hierarchies, the scalar Timeloop model).
"""
