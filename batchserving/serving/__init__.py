"""What batch inference serves: the deployment record, batch scoring, table I/O."""
