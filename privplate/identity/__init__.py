"""People and service accounts: roles, Argon2id passwords, sessions and API keys."""

from privplate.identity.accounts import UserInfo
from privplate.identity.roles import USER_ROLES, Role

__all__ = ["USER_ROLES", "Role", "UserInfo"]
