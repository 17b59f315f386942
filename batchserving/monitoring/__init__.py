"""Watching served batches: a day of predictions against the training data and the truth.

``days`` (which prediction files a KST day holds), ``served`` (reading one file, checked,
with its labels joined), ``drift`` (the day's tests and the decision, corrected for their
number), ``quality`` (live accuracy and macro F1 from confusion counts), ``reference``
(the training data a version was trained from, read at its commit and verified),
``day`` (one day from files to results), ``report`` (the HTML report). The stage
``stages/monitor_predictions.py`` runs them; heavy libraries are imported there.
"""
