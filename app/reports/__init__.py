"""Reports (issue 12): a campaign's outcome, audience growth, and the stakeholder links that
share them. Read-only aggregates: counts from indexed GROUP BYs and tracking's rollups, never
a scan of raw tracking events, never a person's row in what is shared."""
