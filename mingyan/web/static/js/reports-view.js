// Reports in the page: the report dialog of a reply, "My reports" (status and answer) on the
// account page, and the administrators' queue (open / in review / resolved; answer, hide, resolve).
// Reported content is shown as text, never interpreted.

import { api } from "./api.js";
import { h } from "./dom.js";
import { lang, tr } from "./i18n.js";
import { formDialog, toast } from "./dialogs.js";
import { formatDate, problem, table } from "./forms.js";

export const REASONS = ["illegal", "violence", "sexual", "minors", "hate", "self_harm", "fraud", "privacy", "false", "other"];
const STATUSES = ["open", "in_review", "resolved"];
const TEXT = {
  en: {
    reportTitle: "Report this reply", reason: "Reason", details: "Details (optional)", send: "Send report",
    sent: "Thank you: the report was sent. You can follow it on your account page.", myReports: "My reports",
    queue: "Reports", status: "Status", answer: "Answer", date: "Reported", content: "Reported content",
    reporter: "Reporter", review: "In review", resolve: "Resolve…", hide: "Hide the reported content",
    resolved: "Resolved", responded: "Response time", none: "No reports.",
    open: "Open", in_review: "In review",
    illegal: "Illegal content", violence: "Violence", sexual: "Sexual content", minors: "Involves minors",
    hate: "Hate", self_harm: "Self-harm", fraud: "Fraud", privacy: "Privacy", false: "False information", other: "Other",
  },
  zh: {
    reportTitle: "举报这条回答", reason: "原因", details: "说明（可选）", send: "提交举报",
    sent: "感谢举报，已提交。可在账户页面查看处理进度。", myReports: "我的举报",
    queue: "举报", status: "状态", answer: "处理答复", date: "举报时间", content: "被举报内容",
    reporter: "举报人", review: "开始处理", resolve: "处理完成…", hide: "隐藏被举报的内容",
    resolved: "已处理", responded: "响应时间", none: "暂无举报。",
    open: "待处理", in_review: "处理中",
    illegal: "违法内容", violence: "暴力", sexual: "色情", minors: "涉及未成年人",
    hate: "仇恨", self_harm: "自残", fraud: "诈骗", privacy: "隐私", false: "虚假信息", other: "其他",
  },
};
const s = (key) => (lang().startsWith("zh") ? TEXT.zh : TEXT.en)[key] ?? key;
const statusText = (status) => (status === "resolved" ? s("resolved") : s(status));

/** Ask for a reason and details, then report `message` (a reply). */
export async function reportMessage(message) {
  const reason = h("select", { class: "input", name: "reason", id: "report-reason" }, REASONS.map((r) => h("option", { value: r, text: s(r) })));
  const details = h("textarea", { class: "input", name: "details", id: "report-details", maxlength: 4000, rows: 3 });
  const body = h("div", { class: "report-form" },
    h("label", { class: "field" }, h("span", { text: s("reason") }), reason),
    h("label", { class: "field" }, h("span", { text: s("details") }), details));
  if (!(await formDialog({ title: s("reportTitle"), body, confirm: s("send") }))) return;
  try {
    await api.post("/api/reports", { conversation_id: message.conversation_id, message_id: message.id, reason: reason.value, details: details.value });
    toast(s("sent"));
  } catch (error) {
    toast(problem(error), "error");
  }
}

/** The account page's card: the user's reports, their status and the administrators' answers. */
export function myReportsCard() {
  const list = h("div", { class: "my-reports" });
  const root = h("section", { class: "card", id: "my-reports" }, h("h2", tr("myReports")), list);
  api.get("/api/reports").then(
    ({ data }) => list.replaceChildren(reportsTable(data, false)),
    (error) => list.replaceChildren(h("p", { class: "error-text", text: problem(error) })),
  );
  return root;
}

function reportsTable(reports, admin, actions = null) {
  if (!reports.length) return h("p", { class: "hint", text: s("none") });
  const columns = admin ? ["date", "reporter", "reason", "content", "status", "answer", "responded", ""] : ["date", "reason", "status", "answer"];
  const head = h("thead", {}, h("tr", {}, columns.map((key) => h("th", { scope: "col", text: key ? s(key) : "" }))));
  const rows = reports.map((report) => {
    const cells = [formatDate(report.created_at)];
    if (admin) cells.push(report.reporter_id);
    cells.push(s(report.reason));
    if (admin) cells.push(h("div", { class: "report-content" }, report.content.map((m) => h("p", { text: `${m.role}: ${m.content}` }))));
    cells.push(statusText(report.status), report.answer || "—");
    if (admin) cells.push(report.response_seconds == null ? "—" : `${Math.round(report.response_seconds)} s`, actions(report));
    return h("tr", { "data-report": report.id, "data-status": report.status }, cells.map((cell) => h("td", {}, cell)));
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "data-table reports-table" }, head, h("tbody", {}, rows)));
}

/** The administration page's tab: the queue, by status. */
export class ReportsTab {
  constructor() {
    this.status = "open";
    this.list = h("div", { class: "report-queue" });
    const filter = h("select", { class: "input", id: "report-status", onchange: (event) => this.load(event.target.value) },
      STATUSES.map((status) => h("option", { value: status, text: statusText(status) })));
    this.root = h("div", { class: "tab-body", id: "admin-reports" }, h("h2", { text: s("queue") }), filter, this.list);
  }

  async load(status = this.status) {
    this.status = status;
    try {
      const { data } = await api.get(`/api/admin/reports?status=${encodeURIComponent(status)}`);
      this.list.replaceChildren(reportsTable(data, true, (report) => this.actions(report)));
    } catch (error) {
      this.list.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
    }
  }

  actions(report) {
    const buttons = [];
    if (report.status === "open") buttons.push(h("button", { type: "button", class: "button", "data-action": "review", text: s("review"), onclick: () => this.update(report, { status: "in_review" }) }));
    if (report.status !== "resolved") buttons.push(h("button", { type: "button", class: "button primary", "data-action": "resolve", text: s("resolve"), onclick: () => this.resolve(report) }));
    return h("div", { class: "row-buttons" }, buttons);
  }

  async resolve(report) {
    const answer = h("textarea", { class: "input", name: "answer", id: "report-answer", maxlength: 4000, rows: 3 });
    const hide = h("input", { type: "checkbox", name: "hide", id: "report-hide" });
    const body = h("div", { class: "report-form" },
      h("label", { class: "field" }, h("span", { text: s("answer") }), answer),
      h("label", { class: "check" }, hide, h("span", { text: s("hide") })));
    if (await formDialog({ title: s("resolve"), body, confirm: s("resolved") })) {
      await this.update(report, { status: "resolved", answer: answer.value, hide: hide.checked });
    }
  }

  async update(report, body) {
    try {
      await api.patch(`/api/admin/reports/${encodeURIComponent(report.id)}`, body);
    } catch (error) {
      toast(problem(error), "error");
    }
    await this.load();
  }
}
