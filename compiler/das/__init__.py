"""DAS: the generic accelerator design space (GADS) and the differentiable accelerator search.

`space` turns a workload and a target into a list of knobs with finite choices (DNA Tab. 1,
TRIPS App. B); `decode` turns a batch of choice vectors into designs, as arrays for the
batched cost models and as IR graphs for reports and back-ends.
"""
