"""The permission matrix is DESIGN.md's "Roles" table, cell for cell."""

import pytest

from contracts.permissions import Permission, Role, role_allows

P = Permission
DESIGN_TABLE: dict[Permission, set[Role]] = {
    P.READ_WORKSPACE: {Role.SUPER_ADMIN, Role.DEVELOPER, Role.CREATOR, Role.VIEWER},
    P.EDIT_ASSETS: {Role.SUPER_ADMIN, Role.DEVELOPER, Role.CREATOR},
    P.SPEND_CREDITS: {Role.SUPER_ADMIN, Role.DEVELOPER, Role.CREATOR},
    P.MANAGE_API_KEYS: {Role.SUPER_ADMIN, Role.DEVELOPER},
    P.MANAGE_MEMBERS: {Role.SUPER_ADMIN},
    P.MANAGE_SUB_WORKSPACES: {Role.SUPER_ADMIN},
    P.PURCHASE_AND_SHARE: {Role.SUPER_ADMIN},
}


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_the_permissions_of_the_design(
    role: Role, permission: Permission
) -> None:
    assert role_allows(role, permission) == (role in DESIGN_TABLE[permission])


def test_the_design_table_covers_every_permission() -> None:
    assert set(DESIGN_TABLE) == set(Permission)


def test_roles_are_the_strings_of_the_api() -> None:
    assert [role.value for role in Role] == ["super_admin", "developer", "creator", "viewer"]
