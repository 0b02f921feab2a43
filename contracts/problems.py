"""Problem types (RFC 9457) that Atrium answers with, by stable slug.

A problem's `type` member is the slug itself; a client matches on it, never on
`title` or `detail`.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str


VALIDATION_FAILED = ProblemType("validation-failed", 422, "The request is not valid")
MALFORMED_REQUEST = ProblemType("malformed-request", 400, "The request could not be read")
UNAUTHENTICATED = ProblemType("unauthenticated", 401, "Valid credentials are required")
FORBIDDEN = ProblemType("forbidden", 403, "Your role does not allow this")
NOT_FOUND = ProblemType("not-found", 404, "Not found")
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", 405, "Method not allowed")
REQUEST_TIMEOUT = ProblemType("request-timeout", 408, "The request did not arrive in time")
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", 413, "The request body is too large")
HEADERS_TOO_LARGE = ProblemType("headers-too-large", 431, "The request's headers are too large")
RATE_LIMITED = ProblemType("rate-limited", 429, "Too many requests")
INTERNAL_ERROR = ProblemType("internal-error", 500, "Something went wrong on our side")
BAD_GATEWAY = ProblemType("bad-gateway", 502, "A service behind the gateway failed")
SERVICE_UNAVAILABLE = ProblemType("service-unavailable", 503, "A dependency is unavailable")
GATEWAY_TIMEOUT = ProblemType("gateway-timeout", 504, "A service behind the gateway timed out")
NOT_READY_YET = ProblemType(
    "not-ready-yet", 503, "A change you just made has not reached this service yet"
)
IDEMPOTENCY_KEY_REUSED = ProblemType(
    "idempotency-key-reused", 422, "This Idempotency-Key was used with another request"
)

SEAT_LIMIT_REACHED = ProblemType("seat-limit-reached", 409, "The seat limit is reached")
ALREADY_MEMBER = ProblemType("already-member", 409, "Already a member")
LAST_SUPER_ADMIN = ProblemType("last-super-admin", 409, "The last Super Admin must stay")
HAS_SUB_WORKSPACES = ProblemType("has-sub-workspaces", 409, "The workspace has sub-workspaces")
INVITATION_EXPIRED = ProblemType("invitation-expired", 410, "The invitation has expired")
ALREADY_INVITED = ProblemType("already-invited", 409, "A pending invitation exists already")
EMAIL_NOT_VERIFIED = ProblemType("email-not-verified", 403, "Your email is not verified")
DEPTH_LIMIT_REACHED = ProblemType("depth-limit-reached", 409, "The workspace tree is deep enough")
PARENT_BILLED_CANNOT_HAVE_CHILDREN = ProblemType(
    "parent-billed-cannot-have-children",
    409,
    "A workspace its parent pays for cannot have sub-workspaces",
)
ROOT_NOT_DELETABLE = ProblemType("root-not-deletable", 409, "An account's root cannot be deleted")
ROOT_PAYS_FOR_ITSELF = ProblemType("root-pays-for-itself", 409, "A root always pays for itself")
WORKSPACE_DELETING = ProblemType("workspace-deleting", 409, "The workspace is being deleted")
NOT_A_BILLING_ROOT = ProblemType("not-a-billing-root", 409, "Not a billing root")
INSUFFICIENT_BALANCE = ProblemType("insufficient-balance", 409, "The parent's balance is short")
BELOW_USAGE = ProblemType("below-usage", 409, "Below what is already in use")
INSUFFICIENT_CREDITS = ProblemType("insufficient-credits", 402, "Not enough credits")
API_ACCESS_DISABLED = ProblemType("api-access-disabled", 409, "API access is off")
AVATAR_SLOT_LIMIT = ProblemType("avatar-slot-limit", 409, "No avatar slot is free")
BILLED_ON_ITS_OWN = ProblemType("billed-on-its-own", 409, "The workspace pays for itself")
AVATAR_ALREADY_CLAIMED = ProblemType(
    "avatar-already-claimed", 409, "This avatar already holds a slot"
)
NOT_SHAREABLE = ProblemType("not-shareable", 409, "A shared-in asset cannot be shared again")
KEY_CREDIT_LIMIT_REACHED = ProblemType(
    "key-credit-limit-reached", 402, "The API key's monthly credit limit is reached"
)
KEY_NOT_ACTIVE = ProblemType(
    "key-not-active", 409, "The API key is revoked, rotated already or expired"
)

_BY_STATUS_DEFAULT: dict[int, ProblemType] = {
    400: MALFORMED_REQUEST,
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    408: REQUEST_TIMEOUT,
    413: PAYLOAD_TOO_LARGE,
    422: VALIDATION_FAILED,
    429: RATE_LIMITED,
    431: HEADERS_TOO_LARGE,
    500: INTERNAL_ERROR,
    502: BAD_GATEWAY,
    503: SERVICE_UNAVAILABLE,
    504: GATEWAY_TIMEOUT,
}


def problem_for_status(status: int) -> ProblemType:
    """The generic problem type for an HTTP status that carries no domain meaning."""
    return _BY_STATUS_DEFAULT.get(status) or ProblemType(f"http-{status}", status, "Request failed")
