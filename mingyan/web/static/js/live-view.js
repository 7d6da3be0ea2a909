// The administration page's "live replies" tab: every user's replies being generated now (who,
// which conversation and model, since when, tokens so far; never their text), refreshed every few
// seconds, each with a Stop button (POST /api/admin/live/{id}/stop: the reply ends "interrupted").

import { api } from "./api.js";
import { h } from "./dom.js";
import { lang } from "./i18n.js";
import { toast } from "./dialogs.js";
import { formatDate, problem } from "./forms.js";

const REFRESH_MS = 3000;
const TEXT = {
  en: {
    hint: "Replies being generated now, by every server process. Stopping one keeps its text so far; the user sees it was stopped by an administrator.",
    user: "User", conversation: "Conversation", model: "Model", started: "Started", tokens: "Tokens", stop: "Stop",
    none: "No reply is being generated.", stopped: "Stopped.", pending: "Stop requested: the process generating it will stop it.", ended: "It had already ended.",
    other: "another process",
  },
  zh: {
    hint: "所有服务进程中正在生成的回答。停止后保留已生成的文字，用户会看到该回答已被管理员停止。",
    user: "用户", conversation: "对话", model: "模型", started: "开始时间", tokens: "已生成词元", stop: "停止",
    none: "当前没有正在生成的回答。", stopped: "已停止。", pending: "已请求停止：生成它的进程将停止它。", ended: "该回答已经结束。",
    other: "其他进程",
  },
};
const s = (key) => (lang().startsWith("zh") ? TEXT.zh : TEXT.en)[key] ?? key;

export class LiveTab {
  constructor() {
    this.list = h("div", { class: "live-list" });
    this.root = h("div", { class: "tab-body", id: "admin-live" }, h("p", { class: "hint", text: s("hint") }), this.list);
    this.timer = null;
  }

  async load() {
    clearTimeout(this.timer);
    if (!this.root.isConnected && this.loaded) return; // the tab was left: stop refreshing
    this.loaded = true;
    try {
      const { data } = await api.get("/api/admin/live");
      this.list.replaceChildren(this.render(data));
    } catch (error) {
      this.list.replaceChildren(h("p", { class: "error-text", text: problem(error) }));
    }
    this.timer = setTimeout(() => this.load(), REFRESH_MS);
  }

  render(replies) {
    if (!replies.length) return h("p", { class: "empty live-empty", text: s("none") });
    const head = ["user", "conversation", "model", "started", "tokens", ""].map((key) => h("th", { scope: "col", text: key ? s(key) : "" }));
    const rows = replies.map((reply) => {
      const stop = h("button", { type: "button", class: "button small danger", "data-action": "stop-live", text: s("stop") });
      stop.addEventListener("click", () => this.stop(reply, stop));
      const user = reply.username || reply.user_id;
      return h("tr", { "data-id": reply.id, "data-user": user },
        h("td", { class: "live-user", title: reply.user_id, text: user }),
        h("td", { class: "live-conversation", text: reply.conversation_id }),
        h("td", { class: "live-model", text: reply.model || "—" }),
        h("td", {}, h("time", { datetime: reply.started, text: formatDate(reply.started) })),
        h("td", { class: "live-tokens", text: reply.here ? String(reply.tokens) : `${reply.tokens} (${s("other")})` }),
        h("td", {}, stop));
    });
    return h("div", { class: "table-wrap" },
      h("table", { class: "data-table live-table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)));
  }

  async stop(reply, button) {
    button.disabled = true;
    try {
      const result = await api.post(`/api/admin/live/${encodeURIComponent(reply.id)}/stop`);
      toast(s(result.pending ? "pending" : result.stopped ? "stopped" : "ended"));
    } catch (error) {
      toast(problem(error), "error");
    }
    await this.load();
  }
}
