"""AgentBay's wire API, so the official SDK (`wuying-agentbay-sdk`) works against Cove unchanged.

The SDK speaks Alibaba Cloud's RPC style: `POST /?Action=Name&...` with the API key and the
action's fields in a form body (`Authorization=Bearer KEY`), and reads JSON answers shaped
`{"RequestId", "Success", "Code", "Message", "HttpStatusCode", "Data"}`. Each action below is a
thin translation onto the same SessionManager and tools as the native API; actions for features
Cove does not have yet answer a clear NotSupported error, never a pretended success.
The wire is described in ../shared/spec/agentbay-protocol.md and docs/agentbay-compatibility.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cove.agent.protocol import MAX_LINE_BYTES
from cove.contexts.service import iso
from cove.contexts.store import ContextRecord
from cove.contexts.transfers import TRANSFER_FOLDER
from cove.errors import CoveError, InvalidArgument, PayloadTooLarge, SessionNotFound
from cove.server.sandbox_calls import in_sandbox
from cove.server.services import Services
from cove.sessions import browser, links
from cove.sessions.context_syncs import select_tasks
from cove.sessions.manager import LIVE_STATUSES, CreateRequest, tool_catalogue
from cove.sessions.store import SessionRecord

router = APIRouter()

Answer = tuple[Any, dict[str, Any]]
"""An action's `Data`, and any fields the SDK reads beside it (NextToken, TotalCount, ...)."""

ERROR_CODES = {
    "SessionNotFound": ("InvalidMcpSession.NotFound", 400),
    "InvalidArgument": ("InvalidParameter", 400),
    "Unauthorized": ("InvalidApiKey", 401),
    "InvalidState": ("InvalidMcpSession.State", 409),
}
"""Cove's error codes as AgentBay names them (the SDK looks for the names), with AgentBay's status:
an unknown session is a 400 there."""

TOOL_SERVERS = {"shell": "wuying_shell", "get_metrics": "wuying_system", "run_code": "wuying_codespace"}
"""AgentBay's MCP server name of a tool, where it has one; Cove's own tools are served as "cove"."""

NETWORKS_INSTEAD = (
    "networks bound to a user's own network; sessions reach the network under a policy set with "
    "Cove's API: `network` in POST /v1/sessions, PUT /v1/sessions/{id}/network"
)
NOT_YET: dict[str, str] = {
    "GetAdbLink": "mobile sessions",
    **dict.fromkeys(("CreateNetwork", "DescribeNetwork"), NETWORKS_INSTEAD),
    **dict.fromkeys(
        ("GetSkillMetaData", "ListSkillMetaData", "BindContextSkillAsync", "UnbindContextSkillAsync"),
        "skills",
    ),
}
"""AgentBay actions for features Cove does not have yet, and what the feature is called."""

UNSUPPORTED_CREATE_FIELDS = {
    "NetworkId": NETWORKS_INSTEAD,
    "McpPolicyId": "MCP policies",
    "Skills": "skills",
    "LoadSkill": "skills",
    "EnableRecord": "browser replay",
    "ExtraConfigs.": "mobile settings (ExtraConfigs)",
}
"""Fields of CreateMcpSession (or, ending in ".", families of flattened fields) that ask for something
Cove cannot do yet: refused, not ignored."""

AGENTBAY_BROWSER_PROFILE = "/tmp/agentbay_browser"
"""Where AgentBay's SDK keeps the browser's profile (its PersistentPath, which its BrowserContext syncs)."""

TOOLS_NOT_YET = dict.fromkeys(("set_env", "get_env"), "session environment variables")
"""AgentBay tools Cove does not serve yet; other unknown tools are plain bad input."""


WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")
PAGE_TOKEN = re.compile(r"[1-9][0-9]{0,17}")


class NotSupported(CoveError):
    code = "NotSupported"
    http_status = 501


@dataclass
class ActionRequest:
    """One action's parameters (query and form merged), the caller's tenant, and the services."""

    params: dict[str, str]
    tenant_id: str
    services: Services

    def text(self, name: str) -> str:
        return self.params.get(name, "")

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise InvalidArgument(f"{name} is required")
        return value

    def number(self, name: str, default: int) -> int:
        """A whole number in ASCII digits (int() alone would take "1_000", " 7" or "٣")."""
        raw = self.text(name)
        if not raw:
            return default
        if not WHOLE_NUMBER.fullmatch(raw):
            raise InvalidArgument(f"{name} must be a whole number of at most 18 digits, not {raw[:40]!r}")
        return int(raw)

    def page_token(self) -> int:
        """The page a NextToken names: only the page numbers this server hands out are tokens."""
        token = self.text("NextToken")
        if token and not PAGE_TOKEN.fullmatch(token):
            raise InvalidArgument(f"NextToken {token[:40]!r} is not one this server gave")
        return int(token or 1)

    def json(self, name: str, default: Any) -> Any:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return json.loads(raw)
        except ValueError as error:
            raise InvalidArgument(f"{name} must be JSON: {error}") from None
        except RecursionError:
            raise InvalidArgument(f"{name} is nested too deeply") from None

    def labels(self) -> dict[str, str] | None:
        labels = self.json("Labels", None)
        if labels is not None and not isinstance(labels, dict):
            raise InvalidArgument('Labels must be a JSON object such as {"team": "a"}')
        return labels

    def live_session(self) -> SessionRecord:
        """The caller's session; a deleted one is gone, as AgentBay sees it."""
        record = self.services.manager.get(self.tenant_id, self.required("SessionId"))
        if record.status == "DELETED":
            raise SessionNotFound(record.session_id)
        return record


Handler = Callable[[ActionRequest], Answer]
ACTIONS: dict[str, Handler] = {}
SANDBOX_ACTIONS = frozenset(
    {"CallMcpTool", "BindContexts", "SyncContext", "InitBrowser", "GetCdpLink", "GetLink"}
)
"""Actions that wait on a sandbox (a command, folder transfers): they run on the sandbox threads
(server/sandbox_calls.py), so that they never hold up the quick actions."""


def action(*names: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            ACTIONS[name] = handler
        return handler

    return register


def tool_list() -> list[dict[str, Any]]:
    """The tool catalogue every session serves, each tool with an AgentBay server name."""
    return [{**tool, "server": TOOL_SERVERS.get(tool["name"], "cove")} for tool in tool_catalogue()]


def _session_address(call: ActionRequest, record: SessionRecord) -> str:
    """The session's own address on its network ('' with none), AgentBay's NetworkInterfaceIp."""
    if record.status not in LIVE_STATUSES:
        return ""
    return call.services.manager.network(call.tenant_id, record.session_id).address or ""


def session_data(call: ActionRequest, record: SessionRecord) -> dict[str, Any]:
    """What CreateMcpSession and GetSession answer; empty LinkUrl and Token keep tool calls here.
    ResourceUrl is the session's desktop, view-only, in a browser, as AgentBay's own is."""
    viewer = links.desktop_page(call.services.settings, record.session_id, interactive=False)
    return {
        "SessionId": record.session_id,
        "ResourceUrl": f"{viewer}?resourceId={record.session_id}",
        "AppInstanceId": record.session_id,
        "ResourceId": record.session_id,
        "HttpPort": "",
        "NetworkInterfaceIp": _session_address(call, record),
        "VpcResource": False,
        "VpcIp": "",
        "VpcId": "",
        "Token": "",
        "LinkUrl": "",
        "WsUrl": "",
        "ToolList": json.dumps(tool_list()),
    }


@action("CreateMcpSession")
def create_session(call: ActionRequest) -> Answer:
    for name, feature in UNSUPPORTED_CREATE_FIELDS.items():
        given = [field for field, value in call.params.items() if field.startswith(name) and value]
        if given and [call.params[field] for field in given] not in (["False"], ["[]"]):
            raise NotSupported(f"{given[0]} is not supported by this Cove server yet ({feature})")
    request = CreateRequest(
        image_id=call.text("ImageId") or None,
        labels=call.labels(),
        idle_timeout_s=_minutes(call, "Timeout"),
        max_lifetime_s=_minutes(call, "MaxRuntime"),
        context_syncs=_context_syncs(call),
    )
    record = call.services.manager.create(call.tenant_id, request)
    return {**session_data(call, record), "Success": True, "ErrMsg": ""}, {}


def _context_syncs(call: ActionRequest) -> list[dict[str, Any]] | None:
    """PersistenceDataList (spec §5.5) as the manager's syncs; mount items are not supported."""
    items = call.json("PersistenceDataList", None)
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidArgument("PersistenceDataList must be a JSON list of {ContextId, Path, Policy}")
    syncs = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidArgument(f"PersistenceDataList[{n}] must be an object with ContextId, Path, Policy")
        if item.get("Type") == "mount" or "MountConfig" in item:
            raise NotSupported(
                f"PersistenceDataList[{n}]: context mounts are not supported by this Cove server yet"
            )
        syncs.append(
            {"context_id": item.get("ContextId"), "path": item.get("Path"), "policy": item.get("Policy")}
        )
    return syncs


@action("BindContexts")
def bind_contexts(call: ActionRequest) -> Answer:
    """Sync more contexts into the running session; their files are there when it answers."""
    syncs = _context_syncs(call)
    if syncs is None:
        raise InvalidArgument("PersistenceDataList is required: the contexts to bind, [{ContextId, Path}]")
    call.services.manager.bind_contexts(call.tenant_id, call.live_session().session_id, syncs)
    return None, {}


@action("DescribeSessionContexts")
def describe_session_contexts(call: ActionRequest) -> Answer:
    """The session's syncs, made at create or bound later, each with its whole SyncPolicy as JSON."""
    bindings = call.services.manager.context_bindings(call.tenant_id, call.live_session().session_id)
    data = [
        {
            "ContextId": binding.sync.context_id,
            "ContextName": binding.context_name,
            "Path": binding.sync.path,
            "Policy": json.dumps(binding.sync.sync_policy()),
            "BindTime": iso(binding.bound_at),
        }
        for binding in bindings
    ]
    return data, {}


@action("GetAndLoadInternalContext")
def internal_context(call: ActionRequest) -> Answer:
    """The session's file-transfer context (contexts/transfers.py), the one internal kind there is."""
    kinds = {value for name, value in call.params.items() if name.split(".")[0] == "ContextTypes"}
    if kinds - {"file_transfer"}:
        raise NotSupported(f"ContextTypes {sorted(kinds)}: this Cove server has only file_transfer")
    record = call.services.transfers.context(call.tenant_id, call.required("SessionId"))
    item = {"ContextId": record.context_id, "ContextPath": TRANSFER_FOLDER, "ContextType": "file_transfer"}
    return [item], {}


@action("GetContextInfo")
def get_context_info(call: ActionRequest) -> Answer:
    """The session's sync tasks, in AgentBay's double-encoded ContextStatus (spec §3.3)."""
    session_id = call.required("SessionId")
    tasks = [
        *call.services.manager.context_tasks(call.tenant_id, session_id),
        *call.services.transfers.tasks(call.tenant_id, session_id),  # files moved by upload_file, ...
    ]
    chosen = select_tasks(tasks, call.text("ContextId"), call.text("Path"), call.text("TaskType"))
    return {"ContextStatus": json.dumps([{"type": "data", "data": json.dumps(chosen)}])}, {}


@action("SyncContext")
def sync_context(call: ActionRequest) -> Answer:
    """Upload (or, with Mode=download, download) the session's synced folders now; for the session's
    file-transfer context, the one file at `Path`."""
    session_id, context_id = call.required("SessionId"), call.text("ContextId")
    if context_id and call.services.transfers.is_transfer_context(session_id, context_id):
        call.services.transfers.move(call.tenant_id, session_id, call.required("Path"), call.text("Mode"))
        return {}, {}
    call.services.manager.sync_contexts(
        call.tenant_id, session_id, context_id, call.text("Path"), call.text("Mode")
    )
    return {}, {}


def _minutes(call: ActionRequest, name: str) -> int | None:
    """LifecyclePolicy's minutes as seconds; ManualRelease=True means no timeouts at all."""
    if call.text("ManualRelease") == "True":
        return 0
    return call.number(name, 0) * 60 if call.text(name) else None


@action("GetSession")
def get_session(call: ActionRequest) -> Answer:
    record = call.live_session()
    return {**session_data(call, record), "Status": record.status, "contexts": []}, {}


@action("GetSessionDetail")
def get_session_detail(call: ActionRequest) -> Answer:
    """AgentBay says FINISH for a released session; the SDK's delete waits for it."""
    record = call.services.manager.get(call.tenant_id, call.required("SessionId"))
    status = "FINISH" if record.status == "DELETED" else record.status
    return {
        "Id": record.session_id,
        "AppInstanceId": record.session_id,
        "ImageId": record.image_id,
        "Status": status,
        "EndReason": record.status_reason,
    }, {}


@action("ListSession")
def list_sessions(call: ActionRequest) -> Answer:
    found = call.services.manager.list(
        call.tenant_id,
        labels=call.labels() or None,
        status=call.text("Status") or None,
        image_id=call.text("ImageId") or None,
        page=call.page_token(),
        limit=call.number("MaxResults", 10),
    )
    data = [
        {
            "SessionId": record.session_id,
            "SessionStatus": record.status,
            "AppInstanceId": record.session_id,
            "ImageId": record.image_id,
        }
        for record in found.items
    ]
    next_token = str(found.next_page) if found.next_page else ""
    return data, {"NextToken": next_token, "MaxResults": found.limit, "TotalCount": found.total_count}


@action("DeleteSessionAsync", "ReleaseMcpSession")
def delete_session(call: ActionRequest) -> Answer:
    call.services.manager.delete(call.tenant_id, call.required("SessionId"))
    return None, {}


@action("GetLabel")
def get_labels(call: ActionRequest) -> Answer:
    return {"Labels": json.dumps(call.live_session().labels)}, {}


@action("SetLabel")
def set_labels(call: ActionRequest) -> Answer:
    labels = call.labels()
    if labels is None:
        raise InvalidArgument("Labels is required")
    call.services.manager.set_labels(call.tenant_id, call.live_session().session_id, labels)
    return None, {}


@action("InitBrowser")
def init_browser(call: ActionRequest) -> Answer:
    """Start the session's Chromium with `BrowserOption`, its profile in `PersistentPath`; a running
    browser is kept as it is. The SDK takes any `Port` as success."""
    record = call.live_session()
    running = browser.start(
        call.services.manager,
        call.tenant_id,
        record.session_id,
        call.json("BrowserOption", {}),
        call.text("PersistentPath") or AGENTBAY_BROWSER_PROFILE,
    )
    return {"Port": running.port}, {}


@action("GetCdpLink")
def get_cdp_link(call: ActionRequest) -> Answer:
    """The browser-level CDP URL; the browser is started first if it is not running (AgentBay's
    browser images answer it before any InitBrowser)."""
    record = call.live_session()
    manager = call.services.manager
    browser.start(manager, call.tenant_id, record.session_id, persistent_path=AGENTBAY_BROWSER_PROFILE)
    return {"Url": links.cdp_url(manager, call.tenant_id, record.session_id)}, {}


@action("GetLink")
def get_link(call: ActionRequest) -> Answer:
    """A URL to a port in the session (sessions/links.py), or without a Port the browser's CDP URL as
    GetCdpLink answers it; `Option` is accepted and not needed."""
    record = call.live_session()
    if not call.text("Port"):
        return get_cdp_link(call)
    url = links.link_url(
        call.services.manager, call.tenant_id, record.session_id, call.text("Port"), call.text("ProtocolType")
    )
    return {"Url": url}, {}


@action("GetMcpResource")
def get_resource(call: ActionRequest) -> Answer:
    record = call.live_session()
    desktop = dict.fromkeys(("AppId", "AuthCode", "ConnectionProperties", "ResourceType", "Ticket"), "")
    return {
        "SessionId": record.session_id,
        "ResourceUrl": session_data(call, record)["ResourceUrl"],
        "DesktopInfo": {**desktop, "ResourceId": record.session_id},
    }, {}


@action("RefreshSessionIdleTime")
def keep_alive(call: ActionRequest) -> Answer:
    call.services.manager.keep_alive(call.tenant_id, call.live_session().session_id)
    return None, {}


@action("PauseSessionAsync")
def pause_session(call: ActionRequest) -> Answer:
    """Done when it answers: the SDK's poll of GetSession then sees PAUSED at once."""
    call.services.manager.pause(call.tenant_id, call.live_session().session_id)
    return None, {}


@action("ResumeSessionAsync")
def resume_session(call: ActionRequest) -> Answer:
    call.services.manager.resume(call.tenant_id, call.live_session().session_id)
    return None, {}


@action("ListMcpTools")
def list_tools(call: ActionRequest) -> Answer:
    """The SDK parses `Data` as a JSON string."""
    if image_id := call.text("ImageId"):
        call.services.images.get(image_id)
    return json.dumps(tool_list()), {}


@action("CallMcpTool")
def call_tool(call: ActionRequest) -> Answer:
    """`Server` is ignored: every tool is found by its name."""
    arguments = call.json("Args", {})
    name = call.required("Name")
    if name in TOOLS_NOT_YET:
        raise NotSupported(f"{name} is not supported by this Cove server yet ({TOOLS_NOT_YET[name]})")
    record = call.live_session()
    result = call.services.manager.call_tool(
        call.tenant_id, record.session_id, call.required("Name"), arguments
    )
    return result, {}


def context_data(record: ContextRecord) -> dict[str, Any]:
    return {
        "Id": record.context_id,
        "Name": record.name,
        "CreateTime": iso(record.created_at),
        "LastUsedTime": iso(record.last_used_at),
        "State": record.state,
        "OsType": "linux",
    }


@action("GetContext")
def get_context(call: ActionRequest) -> Answer:
    """By `ContextId`, or by `Name` (made first when `AllowCreate` is True)."""
    contexts = call.services.contexts
    if context_id := call.text("ContextId"):
        return context_data(contexts.get(call.tenant_id, context_id)), {}
    create = call.text("AllowCreate").lower() == "true"
    return context_data(contexts.get_by_name(call.tenant_id, call.required("Name"), create)), {}


@action("ListContexts")
def list_contexts(call: ActionRequest) -> Answer:
    found = call.services.contexts.list(call.tenant_id, call.page_token(), call.number("MaxResults", 10))
    next_token = str(found.next_page) if found.next_page else ""
    extra = {"NextToken": next_token, "MaxResults": found.limit, "TotalCount": found.total_count}
    return [context_data(record) for record in found.items], extra


@action("ModifyContext")
def modify_context(call: ActionRequest) -> Answer:
    call.services.contexts.rename(call.tenant_id, call.required("Id"), call.required("Name"))
    return None, {}


@action("DeleteContext")
def delete_context(call: ActionRequest) -> Answer:
    call.services.contexts.delete(call.tenant_id, call.required("Id"))
    return None, {}


@action("ClearContext")
def clear_context(call: ActionRequest) -> Answer:
    """Done when it answers: the SDK's poll of GetContext then sees `available` at once."""
    record = call.services.contexts.clear(call.tenant_id, call.required("Id"))
    return {"Id": record.context_id, "State": record.state}, {}


@action("GetContextFileUploadUrl")
def context_file_upload_url(call: ActionRequest) -> Answer:
    """A URL to PUT the file's bytes to, for an hour, with no key (contexts/service.py)."""
    found = call.services.contexts.upload_url(
        call.tenant_id, call.required("ContextId"), call.required("FilePath")
    )
    return {"Url": found.url, "ExpireTime": found.expire_time}, {}


@action("GetContextFileDownloadUrl")
def context_file_download_url(call: ActionRequest) -> Answer:
    found = call.services.contexts.download_url(
        call.tenant_id, call.required("ContextId"), call.required("FilePath")
    )
    return {"Url": found.url, "ExpireTime": found.expire_time}, {}


@action("DeleteContextFile")
def delete_context_file(call: ActionRequest) -> Answer:
    call.services.contexts.delete_file(call.tenant_id, call.required("ContextId"), call.required("FilePath"))
    return None, {}


@action("DescribeContextFiles")
def describe_context_files(call: ActionRequest) -> Answer:
    """Page mode (`PageNumber`, `PageSize`), or token mode (`MaxResults`, `NextToken`)."""
    token_mode = bool(call.text("NextToken") or call.text("MaxResults"))
    page = call.page_token() if token_mode else call.number("PageNumber", 1)
    limit = call.number("MaxResults", 50) if token_mode else call.number("PageSize", 50)
    found = call.services.contexts.list_files(
        call.tenant_id, call.required("ContextId"), call.text("ParentFolderPath") or "/", page, limit
    )
    data = [
        {
            "FileId": stored.path,
            "FileName": stored.name,
            "FilePath": stored.path,
            "FileType": "folder" if stored.is_folder else "file",
            "GmtCreate": iso(stored.created_at),
            "GmtModified": iso(stored.modified_at),
            "Size": stored.size,
            "Status": "available",
        }
        for stored in found.items
    ]
    next_token = str(found.next_page) if found.next_page else ""
    return data, {"Count": found.total_count, "NextToken": next_token, "MaxResults": found.limit}


async def _body(request: Request) -> bytes:
    """The form body, refused past the largest message a tool call can carry to the agent."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LINE_BYTES:
            raise PayloadTooLarge(
                f"the request is over {MAX_LINE_BYTES // 2**20} MiB; send large files with "
                "PUT /v1/sessions/{id}/files (Cove's SDK: file_system.upload_file)"
            )
    return bytes(body)


def _parameters(query: dict[str, str], body: bytes) -> dict[str, str]:
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise InvalidArgument("the form body must be UTF-8") from None
    return {**query, **form}


def _error(request_id: str, error: CoveError) -> JSONResponse:
    code, status = ERROR_CODES.get(error.code, (error.code, error.http_status))
    body = {
        "RequestId": request_id,
        "Success": False,
        "Code": code,
        "Message": error.message,
        "HttpStatusCode": status,
    }
    return JSONResponse(body, status_code=status)


@router.post("/", include_in_schema=False)
async def dispatch(request: Request) -> JSONResponse:
    """Every AgentBay action: read the action, authenticate, run it, answer in AgentBay's envelope."""
    request_id: str = request.state.request_id
    try:
        params = _parameters(dict(request.query_params), await _body(request))
        name = params.get("Action") or request.headers.get("x-acs-action", "")
        services: Services = request.app.state.services
        tenant_id = services.keys.authenticate(params.get("Authorization"))
        if name in NOT_YET:
            raise NotSupported(f"{name} is not supported by this Cove server yet ({NOT_YET[name]})")
        handler = ACTIONS.get(name)
        if handler is None:
            raise InvalidArgument(f"unknown Action {name!r}")
        run = in_sandbox if name in SANDBOX_ACTIONS else run_in_threadpool
        data, extra = await run(handler, ActionRequest(params, tenant_id, services))
    except CoveError as error:
        return _error(request_id, error)
    body = {"RequestId": request_id, "Success": True, "Code": "ok", "Message": "", "HttpStatusCode": 200}
    return JSONResponse({**body, "Data": data, **extra})
