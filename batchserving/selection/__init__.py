"""Champion/challenger selection: the rule, the comparison, promotion, rollback, redeploy."""
