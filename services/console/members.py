"""Members and invitations of a workspace: invite with a role, revoke, change a role,
remove; and the invitations addressed to the signed-in person."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from clients.tree import or_none, together
from services.console.forms import confirmation, text
from services.console.rendering import done, page
from services.console.session import CheckedForm, Me, checked_form

router = APIRouter()


@router.get("/workspaces/{workspace_id}/members")
async def members_page(request: Request, me: Me, workspace_id: str) -> Response:
    workspace, members, seats = await together(
        me.gateway.get(f"/v1/workspaces/{workspace_id}"),
        me.gateway.all_items(f"/v1/workspaces/{workspace_id}/members"),
        or_none(me.gateway.get(f"/v1/workspaces/{workspace_id}/seats")),
    )
    role = next((str(member["role"]) for member in members if me.is_me(member)), None)
    admin = role == "super_admin"
    invitations = (
        await me.gateway.all_items(f"/v1/workspaces/{workspace_id}/invitations") if admin else []
    )
    return page(
        request,
        "members.html",
        {
            "workspace": workspace,
            "role": role,
            "admin": admin,
            "members": members,
            "invitations": invitations,
            "seats": seats,
            "me": me,
            "tab": "members",
        },
    )


@router.post("/workspaces/{workspace_id}/invitations")
async def invite(me: Me, form: CheckedForm, workspace_id: str) -> Response:
    await me.gateway.post(
        f"/v1/workspaces/{workspace_id}/invitations",
        {"email": text(form, "email") or "", "role": text(form, "role") or ""},
    )
    return done(f"/workspaces/{workspace_id}/members", "invited")


@router.post("/workspaces/{workspace_id}/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    request: Request, me: Me, form: CheckedForm, workspace_id: str, invitation_id: str
) -> Response:
    asking = confirmation(
        request,
        form,
        question=f"Revoke the invitation of {text(form, 'email') or 'this person'}?",
        action="Revoke the invitation",
    )
    if asking is not None:
        return asking
    await me.gateway.delete(f"/v1/workspaces/{workspace_id}/invitations/{invitation_id}")
    return done(f"/workspaces/{workspace_id}/members", "revoked")


@router.post("/workspaces/{workspace_id}/members/{user_id}/role")
async def change_role(me: Me, form: CheckedForm, workspace_id: str, user_id: str) -> Response:
    await me.gateway.patch(
        f"/v1/workspaces/{workspace_id}/members/{user_id}", {"role": text(form, "role") or ""}
    )
    return done(f"/workspaces/{workspace_id}/members", "saved")


@router.post("/workspaces/{workspace_id}/members/{user_id}/remove")
async def remove_member(
    request: Request, me: Me, form: CheckedForm, workspace_id: str, user_id: str
) -> Response:
    asking = confirmation(
        request,
        form,
        question=f"Remove {text(form, 'email') or 'this member'} from the workspace?",
        action="Remove the member",
    )
    if asking is not None:
        return asking
    await me.gateway.delete(f"/v1/workspaces/{workspace_id}/members/{user_id}")
    return done(f"/workspaces/{workspace_id}/members", "removed")


@router.post("/invitations/{invitation_id}/{answer}", dependencies=[Depends(checked_form)])
async def answer_invitation(me: Me, invitation_id: str, answer: str) -> Response:
    if answer not in {"accept", "decline"}:
        raise HTTPException(status_code=404, detail="An invitation is accepted or declined.")
    answered = await me.gateway.post(f"/v1/invitations/{invitation_id}/{answer}")
    if answer == "accept" and answered:
        return done(f"/workspaces/{answered['workspace_id']}", "accepted")
    return done("/workspaces", "declined")
