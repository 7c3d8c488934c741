"""The web console: server-rendered pages for every role, on the same app, roles and services
as the API (a second client of the service layer, never a second copy of a rule)."""
