"""Statistics shared by every layer: success intervals, bootstrap intervals, ROC AUC, the Crafter score,
and paired comparisons of players evaluated on the same seeds."""
