"""Provider webhooks (issue 12): what SES (via SNS), SendGrid, Postmark and Mailgun report
about our mail, verified (signature or credentials) and applied through the one opt-out.

events.py (what every provider's report becomes), sns.py / sendgrid.py / postmark.py /
mailgun.py (verify and read one call; pure but for the SNS certificate fetcher),
apply.py (tie an event to our send, record it once, act), service.py (one call, end to end).
"""
