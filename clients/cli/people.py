"""Members and invitations: `atrium members`, `atrium invitations`, `atrium invite`
(one person, or a CSV file of them with each row's outcome)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from clients.cli import output, session
from clients.cli.groups import ListByDefault
from clients.cli.options import AsJson, Workspace
from clients.gateway import Gateway, Problem, new_idempotency_key
from contracts.permissions import Role

CSV_COLUMNS = ("email", "role")

members = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="The members of a workspace: `atrium members WS` lists them.",
)
invitations = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="Pending invitations: `atrium invitations WS` lists them.",
)


@members.command("list")
def list_members(workspace: Workspace, as_json: AsJson = False) -> None:
    """List the members, with their roles."""
    found = session.call(lambda gateway: gateway.all_items(f"/v1/workspaces/{workspace}/members"))
    output.print_list(
        found,
        as_json=as_json,
        title=f"Members of {workspace}",
        headers=("user id", "email", "role", "inherited", "joined"),
        row=lambda m: (m["user_id"], m["email"], m["role"], m["inherited"], m["joined_at"]),
    )


@members.command("role")
def change_role(workspace: Workspace, user_id: str, role: Role, as_json: AsJson = False) -> None:
    """Give a member another role."""
    changed = session.call(
        lambda gateway: gateway.patch(
            f"/v1/workspaces/{workspace}/members/{user_id}", {"role": role.value}
        )
    )
    if as_json:
        output.print_json(changed)
        return
    output.console().print(f"{user_id} is now {changed['role']} in {workspace}.")


@members.command("remove")
def remove_member(workspace: Workspace, user_id: str, as_json: AsJson = False) -> None:
    """Remove a member (their seat is freed)."""
    session.call(lambda gateway: gateway.delete(f"/v1/workspaces/{workspace}/members/{user_id}"))
    if not as_json:
        output.console().print(f"{user_id} removed from {workspace}.")


@invitations.command("list")
def list_invitations(workspace: Workspace, as_json: AsJson = False) -> None:
    """List the pending invitations."""
    found = session.call(
        lambda gateway: gateway.all_items(f"/v1/workspaces/{workspace}/invitations")
    )
    output.print_list(
        found,
        as_json=as_json,
        title=f"Pending invitations of {workspace}",
        headers=("id", "email", "role", "expires"),
        row=lambda i: (i["id"], i["email"], i["role"], i["expires_at"]),
    )


@invitations.command("revoke")
def revoke_invitation(workspace: Workspace, invitation_id: str, as_json: AsJson = False) -> None:
    """Revoke a pending invitation (its held seat is freed)."""
    session.call(
        lambda gateway: gateway.delete(f"/v1/workspaces/{workspace}/invitations/{invitation_id}")
    )
    if not as_json:
        output.console().print(f"Invitation {invitation_id} revoked.")


@dataclass(frozen=True)
class Row:
    """One invitation asked for by a line of the CSV file."""

    line: int
    email: str
    role: str


@dataclass(frozen=True)
class Outcome:
    row: Row
    invitation: dict[str, Any] | None = None
    problem: Problem | None = None

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"email": self.row.email, "role": self.row.role}
        if self.invitation is not None:
            return {**answer, "invitation": self.invitation}
        assert self.problem is not None
        problem = self.problem
        return {
            **answer,
            "problem": {
                "type": problem.type,
                "title": problem.title,
                "status": problem.status,
                "detail": problem.detail,
                "errors": problem.errors,
            },
        }

    def line(self) -> str:
        if self.invitation is not None:
            return f"✓ {self.row.email} invited as {self.row.role} ({self.invitation['id']})"
        assert self.problem is not None
        refused = output.problem_line(self.problem)
        return f"✗ line {self.row.line}: {self.row.email or '(no email)'}: {refused}"


async def send_invitation(gateway: Gateway, workspace: str, row: Row) -> Outcome:
    try:
        invitation = await gateway.post(
            f"/v1/workspaces/{workspace}/invitations",
            {"email": row.email, "role": row.role},
            idempotency_key=new_idempotency_key(),
        )
    except Problem as problem:
        return Outcome(row, problem=problem)
    return Outcome(row, invitation=invitation)


def read_rows(path: Path, default_role: Role | None) -> list[Row]:
    """The file's rows; a row without a role takes `--role`."""
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = [name for name in CSV_COLUMNS if name not in (reader.fieldnames or ())]
        if "email" in missing or ("role" in missing and default_role is None):
            msg = f"{path} needs a header line with the columns {', '.join(CSV_COLUMNS)}"
            raise typer.BadParameter(msg, param_hint="--from-csv")
        fallback = default_role.value if default_role else ""
        return [
            Row(
                line=reader.line_num,
                email=(record.get("email") or "").strip(),
                role=(record.get("role") or "").strip() or fallback,
            )
            for record in reader
        ]


async def invite_all(
    gateway: Gateway, workspace: str, rows: list[Row], *, quiet: bool
) -> list[Outcome]:
    """One invitation after another, each row's outcome printed as it comes; a refused
    row does not stop the next."""
    outcomes: list[Outcome] = []
    shown = output.console(stderr=quiet)
    with Progress(console=shown, transient=True) as progress:
        task = progress.add_task("Inviting", total=len(rows))
        for row in rows:
            outcome = await send_invitation(gateway, workspace, row)
            outcomes.append(outcome)
            if not quiet:
                progress.console.print(outcome.line(), markup=False)
            progress.advance(task)
    return outcomes


def invite(
    workspace: Workspace,
    email: Annotated[str | None, typer.Argument(help="Whom to invite.")] = None,
    role: Annotated[
        Role | None, typer.Option(help="Their role (with --from-csv: for rows without one).")
    ] = None,
    from_csv: Annotated[
        Path | None,
        typer.Option(
            "--from-csv", exists=True, dir_okay=False, help="A CSV file with columns email,role."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Invite EMAIL with --role, or everyone in a CSV file (exit 1 if any is refused)."""
    if (email is None) == (from_csv is None):
        raise typer.BadParameter("give EMAIL or --from-csv FILE, one of them")
    if from_csv is None:
        if role is None:
            raise typer.BadParameter("inviting EMAIL needs a role", param_hint="--role")
        invite_one(workspace, Row(0, str(email), role.value), as_json=as_json)
        return
    rows = read_rows(from_csv, role)
    outcomes = session.call(lambda gateway: invite_all(gateway, workspace, rows, quiet=as_json))
    refused = sum(outcome.invitation is None for outcome in outcomes)
    if as_json:
        output.print_json({"items": [outcome.as_json() for outcome in outcomes]})
    else:
        output.console().print(f"{len(outcomes) - refused} invited, {refused} refused.")
    if refused:
        raise typer.Exit(session.REFUSED)


def invite_one(workspace: str, row: Row, *, as_json: bool) -> None:
    invitation = session.call(
        lambda gateway: gateway.post(
            f"/v1/workspaces/{workspace}/invitations",
            {"email": row.email, "role": row.role},
            idempotency_key=new_idempotency_key(),
        )
    )
    if as_json:
        output.print_json(invitation)
        return
    output.console().print(
        f"Invited {invitation['email']} as {invitation['role']}: invitation "
        f"{invitation['id']}, pending until {invitation['expires_at']}."
    )
