"""The approvals inbox and the decide page; every decision goes through `approval_decide`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from agents import boundary
from agents.errors import InvalidInput, TaskNotFound
from tasks_app import views
from tasks_app.admin.common import ReadOnlyAdmin
from tasks_app.models import Approval
from tasks_app.readable import how_it_continues, step_number
from tasks_app.selectors.approvals import approval_get_for_decision
from tasks_app.services.approvals import PERMISSION as DECIDE_PERMISSION
from tasks_app.services.approvals import approval_decide

LIST_ACTION_CHARS = 600  # a proposed action longer than this is cut in the inbox list (the decide page shows it whole)


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    """The approvals inbox: pending first (longest waiting on top), then the latest decisions.

    Approve and reject are admin actions; edit-then-approve is the per-approval decide page.
    Both need `tasks_app.decide_approval`: without it the actions are not offered, a posted
    action is refused by the changelist, the decide page refuses a POST, and the service
    refuses once more.
    """

    # The decide link sits in the first column, so it is on screen at 1280 px however long the action is.
    list_display = ("state", "task_link", "step", "proposed_action", "decision")
    list_display_links = None
    list_filter = ("status", "kind", "task__profile")
    search_fields = ("task__goal", "key")
    list_select_related = ("task", "decided_by")
    actions = ("approve_selected", "reject_selected")

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        pending = Q(status=Approval.Status.PENDING)
        return [
            Case(When(pending, then=Value(0)), default=Value(1), output_field=IntegerField()).asc(),
            Case(When(pending, then=F("requested_at"))).asc(),  # the longest-waiting request first
            F("decided_at").desc(nulls_last=True),
            "-requested_at",
        ]

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(DECIDE_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_decide_permission(request)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:approval_id>/decide/", self.admin_site.admin_view(self.decide_view), name="tasks_app_approval_decide"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        # Without the navigation sidebar the whole proposed action fits beside the decide link at 1280 px.
        context = {"title": "Approvals inbox", "is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        # The read-only change form would show raw JSON; the decide page shows the same row readably.
        if object_id.isdigit():
            return HttpResponseRedirect(reverse("admin:tasks_app_approval_decide", args=[int(object_id)]))
        return super().change_view(request, object_id, form_url, extra_context)

    # --- columns -------------------------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def state(self, obj: Approval) -> str:
        label = "decide…" if obj.status == Approval.Status.PENDING else "details"
        url = reverse("admin:tasks_app_approval_decide", args=[obj.pk])
        asked = timezone.localtime(obj.requested_at).strftime("%Y-%m-%d %H:%M")
        return format_html(
            '<span class="approval-{}"><strong>{}</strong></span><br><a class="decide-link" href="{}">{}</a>'
            "<br><small>asked {}</small>",
            obj.status,
            obj.status,
            url,
            label,
            asked,
        )

    @admin.display(description="task", ordering="task__goal")
    def task_link(self, obj: Approval) -> str:
        goal = obj.task.goal if len(obj.task.goal) <= 80 else obj.task.goal[:79] + "…"
        url = reverse("admin:tasks_app_agenttask_timeline", args=[obj.task_id])
        return format_html('<a href="{}">{}</a><br><small>{}</small>', url, goal, obj.task.status)

    @admin.display(description="step", ordering="step_index")
    def step(self, obj: Approval) -> str:
        return f"{step_number(obj.step_index)}, {obj.get_kind_display()} (plan v{obj.plan_version})"

    @admin.display(description="proposed action")
    def proposed_action(self, obj: Approval) -> str:
        action = views.proposed_action_text(obj)
        body = action["code"]  # code as code: its own lines, not a JSON string with \n escapes
        if len(body) > LIST_ACTION_CHARS:
            body = body[: LIST_ACTION_CHARS - 1] + "…"
        return format_html(
            '<strong>{}</strong><pre class="proposed-code" style="white-space: pre; overflow: auto; margin: 4px 0 0; '
            'max-width: 40em; max-height: 14em; font-family: ui-monospace, Menlo, Consolas, monospace">{}</pre>',
            action["title"],
            body,
        )

    @admin.display(description="decision", ordering="decided_at")
    def decision(self, obj: Approval) -> str:
        if obj.status == Approval.Status.PENDING:
            return "—"
        who = obj.decided_by.get_username() if obj.decided_by else "(no user)"
        when = timezone.localtime(obj.decided_at).strftime("%Y-%m-%d %H:%M:%S") if obj.decided_at else ""
        edited = " with edited arguments" if obj.edited_arguments is not None else ""
        return format_html("{} by {}{}<br><small>{}</small><br>{}", obj.status, who, edited, when, obj.comment)

    # --- decisions ------------------------------------------------------------------------------

    def _decide(
        self,
        request: HttpRequest,
        approval: Approval,
        *,
        approve: bool,
        comment: str = "",
        edited_arguments: dict[str, Any] | None = None,
    ) -> bool:
        """One decision through the service; its refusal becomes an error message. True when applied."""
        what = views.proposed_action_text(approval)["title"]
        try:
            approval_decide(
                approval_id=approval.pk, user=request.user, approve=approve, comment=comment, edited_arguments=edited_arguments
            )
        except (InvalidInput, TaskNotFound) as exc:
            self.message_user(request, f"Not decided: {what!r} on “{approval.task.goal[:60]}”: {exc}", messages.ERROR)
            return False
        verb = "Approved" if approve else "Rejected"
        if edited_arguments is not None:
            verb = "Approved with edited arguments"
        then = how_it_continues(str(approval.task_id))  # ends with the command: no full stop to paste with it
        self.message_user(request, f"{verb}: {what!r} on “{approval.task.goal[:60]}”; {then}", messages.SUCCESS)
        return True

    @admin.action(description="Approve the selected actions", permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> None:
        for approval in queryset.select_related("task").order_by("pk"):
            self._decide(request, approval, approve=True)

    @admin.action(description="Reject the selected actions (with a comment)…", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Approval]) -> HttpResponse | None:
        selected = list(queryset.select_related("task").order_by("pk"))
        if request.POST.get("confirm") == "reject":
            comment = request.POST.get("comment", "").strip()
            if not comment:
                self.message_user(
                    request, "Not rejected: a rejection needs a comment saying why (the agent reads it).", messages.ERROR
                )
                return None
            for approval in selected:
                self._decide(request, approval, approve=False, comment=comment)
            return None
        # First pass: ask for the comment on an intermediate page that posts the action back.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Reject the selected actions",
            "approvals": [(a, views.proposed_action_text(a)) for a in selected],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/tasks_app/approval/reject_confirmation.html", context)

    def decide_view(self, request: HttpRequest, approval_id: int) -> HttpResponse:
        """One approval in full, with approve, reject and (for a tool call) edit-then-approve."""
        approval = approval_get_for_decision(approval_id=approval_id)
        if approval is None:
            raise Http404(f"no approval {approval_id}")
        if not self.has_view_permission(request, approval):
            raise PermissionDenied
        can_decide = self.has_decide_permission(request)
        action = views.proposed_action_text(approval)
        arguments_text = action["body"] if approval.kind == "tool" else ""
        comment = ""
        if request.method == "POST":
            if not can_decide:
                raise PermissionDenied
            decision = request.POST.get("decision", "")
            comment = request.POST.get("comment", "")
            arguments_text = request.POST.get("arguments", arguments_text)
            applied = False
            if decision == "approve":
                applied = self._decide(request, approval, approve=True, comment=comment)
            elif decision == "reject":
                applied = self._decide(request, approval, approve=False, comment=comment)
            elif decision == "approve_edited":
                edited = self._parse_arguments(request, arguments_text)
                if edited is not None:
                    applied = self._decide(request, approval, approve=True, comment=comment, edited_arguments=edited)
            else:
                self.message_user(request, "Choose approve, reject or approve with the edited arguments.", messages.ERROR)
            if applied:
                return HttpResponseRedirect(reverse("admin:tasks_app_approval_changelist"))
            approval.refresh_from_db()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Approval #{approval.pk}: {action['title']}",
            "approval": approval,
            "action": action,
            "task": approval.task,
            "pending": approval.status == Approval.Status.PENDING,
            "can_decide": can_decide,
            "arguments_text": arguments_text,
            "comment": comment,
            "step_label": step_number(approval.step_index),
            "timeline_url": reverse("admin:tasks_app_agenttask_timeline", args=[approval.task_id]),
            "inbox_url": reverse("admin:tasks_app_approval_changelist"),
        }
        return TemplateResponse(request, "admin/tasks_app/approval/decide.html", context)

    def _parse_arguments(self, request: HttpRequest, text: str) -> dict[str, Any] | None:
        try:
            edited = boundary.loads(text, "the edited arguments")  # agents/boundary.py: storable or refused
        except boundary.BoundaryError as exc:
            self.message_user(request, f"Not decided: {exc}", messages.ERROR)
            return None
        if not isinstance(edited, dict):
            self.message_user(request, "Not decided: the edited arguments must be a JSON object.", messages.ERROR)
            return None
        return edited
