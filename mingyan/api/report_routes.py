"""Reports: any user reports a reply or a conversation and follows it (/api/reports); administrators
work the queue (/api/admin/reports). Every step is audited. Parse, call the store, serialize."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from mingyan.api.audit import audit
from mingyan.api.auth import CurrentPrincipal, Principal, require_admin, require_principal
from mingyan.api.context import context
from mingyan.api.schemas.safety import (
    ReportAdminOut,
    ReportCreate,
    ReportList,
    ReportOut,
    ReportQueue,
    ReportReview,
)
from mingyan.store.reports import ReportStore, response_seconds
from mingyan.store.tables import Report

router = APIRouter(prefix="/api", dependencies=[Depends(require_principal)], tags=["reports"])
Admin = Annotated[Principal, Depends(require_admin)]


def _reports(request: Request) -> ReportStore:
    return ReportStore(context(request).history())


def _admin_view(report: Report) -> ReportAdminOut:
    view = ReportAdminOut.model_validate(report)
    view.response_seconds = response_seconds(report)
    return view


@router.post("/reports", status_code=201)
async def create_report(body: ReportCreate, request: Request, principal: CurrentPrincipal) -> ReportOut:
    report = await asyncio.to_thread(
        _reports(request).create, principal.user_id, body.conversation_id, body.message_id, body.reason, body.details
    )
    await audit(request, principal, "report_created", report.id, reason=body.reason, message=body.message_id)
    return ReportOut.model_validate(report)


@router.get("/reports")
async def my_reports(request: Request, principal: CurrentPrincipal) -> ReportList:
    reports = await asyncio.to_thread(_reports(request).list, reporter=principal.user_id)
    return ReportList(data=[ReportOut.model_validate(r) for r in reports])


@router.get("/admin/reports")
async def report_queue(
    request: Request,
    admin: Admin,
    status: Annotated[str | None, Query(pattern="^(open|in_review|resolved)$")] = None,
) -> ReportQueue:
    reports = await asyncio.to_thread(_reports(request).list, status=status)
    return ReportQueue(data=[_admin_view(r) for r in reports])


@router.patch("/admin/reports/{report_id}")
async def review_report(report_id: str, body: ReportReview, request: Request, admin: Admin) -> ReportAdminOut:
    store = _reports(request)
    await asyncio.to_thread(store.get, report_id)  # NotFound first, nothing written
    if body.hide:
        hidden = await asyncio.to_thread(store.hide, report_id, admin.user_id)
        await audit(request, admin, "report_content_hidden", report_id, messages=hidden)
    report = await asyncio.to_thread(store.review, report_id, admin.user_id, status=body.status, answer=body.answer)
    await audit(request, admin, "report_reviewed", report_id, status=report.status, answered=body.answer is not None)
    return _admin_view(report)
