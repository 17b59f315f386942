"""The Iris dataset's schema, the train/test split and the scoring every stage shares."""
