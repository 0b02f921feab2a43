"""identity: users, the workspace tree, settings, members, invitations, roles, seats."""
