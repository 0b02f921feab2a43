"""Roles and the role → permission matrix (DESIGN.md, "Roles"), as data.

A Super Admin of a workspace acts as Super Admin in all its descendants;
nobody gains any right in an ancestor or a sibling.
"""

from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    DEVELOPER = "developer"
    CREATOR = "creator"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ_WORKSPACE = "read_workspace"
    """Read the workspace, its members, assets and balances."""
    EDIT_ASSETS = "edit_assets"
    """Create and edit avatars, voices, brand kits and templates."""
    SPEND_CREDITS = "spend_credits"
    """Spend generative credits: videos, images, translations, avatar fees."""
    MANAGE_API_KEYS = "manage_api_keys"
    """Manage API keys and read API usage, only where `api_access` is on."""
    MANAGE_MEMBERS = "manage_members"
    """Invite and remove members, change roles."""
    MANAGE_SUB_WORKSPACES = "manage_sub_workspaces"
    """Create, configure and delete sub-workspaces; allocate resources."""
    PURCHASE_AND_SHARE = "purchase_and_share"
    """Make purchases and share assets."""


_EVERYONE = frozenset({Permission.READ_WORKSPACE})
_CREATORS = _EVERYONE | {Permission.EDIT_ASSETS, Permission.SPEND_CREDITS}
_DEVELOPERS = _CREATORS | {Permission.MANAGE_API_KEYS}

ROLE_PERMISSIONS: MappingProxyType[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.VIEWER: _EVERYONE,
        Role.CREATOR: _CREATORS,
        Role.DEVELOPER: _DEVELOPERS,
        Role.SUPER_ADMIN: frozenset(Permission),
    },
)


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
