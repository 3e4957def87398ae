"""Campaigns: CRUD, the state machine, audience selection and scheduling rules."""
