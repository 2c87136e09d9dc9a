"""Reserved pattern ids and labels, defined once for clustering, labelling, heat maps and similarity."""

from __future__ import annotations

#: The id of "no pattern": HDBSCAN's noise label, kept through every stage.
NOISE = -1
#: The same id under the name the heat maps and similarity index use.
UNCLUSTERED_ID = NOISE
#: How an incident without a pattern is shown to people.
UNCLUSTERED = "unclustered"
#: The ground-truth label of an incident that belongs to no recurring pattern (sample truth, analyst labels).
ONE_OFF = "one-off"
