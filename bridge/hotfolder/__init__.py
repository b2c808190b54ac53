"""The hot folder: what lands in it (inbox, grouping, manifest), the journal and the layout of its folders,
a stack's life (lifecycle, runner, recovery), the service that watches it, and its status."""
