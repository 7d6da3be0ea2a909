// Every string of the web chat, in Simplified Chinese and English, and the language switch.
// The language follows the browser (navigator.languages) unless the user picked one, which is
// remembered in this browser. Elements carry data-i18n (text), data-i18n-placeholder,
// data-i18n-title (title and aria-label) and data-i18n-aria; applyI18n() redraws them all.

import { prefs } from "./prefs.js";

const plural = (n, one, many) => (n === 1 ? one : many);

const STRINGS = {
  en: {
    appName: "mingyan",
    newChat: "New chat",
    untitled: "Untitled chat",
    conversations: "Conversations",
    searchPlaceholder: "Search chats",
    noResults: "Nothing found.",
    hitTitle: "title",
    hitUser: "you",
    hitAssistant: "AI",
    hitArchived: "archived",
    noConversations: "No chats yet.",
    noArchived: "No archived chats.",
    loadMore: "Load more",
    showArchived: "Archived chats",
    showActive: "Back to chats",
    importChats: "Import",
    exportAll: "Export all",
    settings: "Settings",
    toggleTheme: "Light / dark theme",
    otherLanguage: "中文",
    openSidebar: "Show chats",
    closeSidebar: "Hide chats",
    more: "More",
    rename: "Rename",
    renameTitle: "Rename chat",
    pin: "Pin",
    unpin: "Unpin",
    archive: "Archive",
    unarchive: "Unarchive",
    exportJson: "Export JSON",
    exportMarkdown: "Export Markdown",
    delete: "Delete",
    deleteTitle: "Delete chat?",
    deleteConfirm: ({ title }) => `“${title}” and all its messages will be deleted. This cannot be undone.`,
    deleted: "Chat deleted.",
    imported: ({ n, m, skipped }) =>
      `Imported ${n} ${plural(n, "chat", "chats")} (${m} ${plural(m, "message", "messages")})` +
      (skipped ? `; ${skipped} ${plural(skipped, "item", "items")} skipped.` : "."),
    importFailed: "Import failed",
    welcomeTitle: "What can I help with?",
    welcomeText: "Ask in Chinese or English. Replies are generated on this server by an open-weight model.",
    persona: "Persona",
    personaNone: "Default assistant",
    composerPlaceholder: "Message mingyan…",
    composerHint: "Enter to send, Shift+Enter for a new line",
    message: "Message",
    send: "Send",
    stop: "Stop",
    scrollToBottom: "Scroll to the latest message",
    disclaimer: "Replies are AI-generated and can be wrong. Check important information.",
    aiGenerated: "AI-generated",
    systemMessage: "System",
    copy: "Copy",
    copyCode: "Copy",
    edit: "Edit",
    saveAndSend: "Save & send",
    regenerate: "Regenerate",
    details: "Details",
    previousVersion: "Previous version",
    nextVersion: "Next version",
    generating: "Generating",
    statusStreaming: "Generating…",
    statusStopped: "Stopped",
    statusError: "Error",
    statusInterrupted: "Interrupted",
    omittedTurns: ({ n }) =>
      `${n} earlier ${plural(n, "turn was", "turns were")} left out of the model's context (the conversation is longer than the model can read).`,
    detailModel: "Model",
    detailPromptTokens: "Prompt tokens",
    detailCachedTokens: "Cached prompt tokens",
    detailCompletionTokens: "Completion tokens",
    detailSpeed: "Speed",
    detailTtft: "Time to first token",
    detailDuration: "Duration",
    detailFinish: "Finish reason",
    detailStatus: "Status",
    detailSeed: "Seed",
    detailSampling: "Sampling",
    detailCreated: "Created",
    remoteImageTitle: ({ url }) => `Image not loaded automatically. Click to open ${url} in a new tab.`,
    image: "image",
    blockedLink: "Unsafe link removed",
    cancel: "Cancel",
    ok: "OK",
    save: "Save",
    close: "Close",
    conversationSettings: "Chat settings",
    scopeConversation: "These settings apply to this chat.",
    scopeNewChat: "No chat is open: these settings apply to the next new chat.",
    model: "Model",
    systemPrompt: "System prompt",
    systemPromptHint: "How the assistant should behave (optional)",
    temperature: "Temperature",
    topP: "Top p",
    maxTokens: "Max reply tokens",
    seed: "Seed",
    defaultValue: "default",
    randomValue: "random",
    invalidField: ({ field }) => `Invalid value for ${field}.`,
    settingsSaved: "Settings saved.",
    personas: "Personas",
    noPersonas: "No saved personas.",
    personaName: "Name",
    personaPrompt: "System prompt of this persona",
    addPersona: "Add persona",
    personaIncomplete: "A persona needs a name and a system prompt.",
    appearance: "Appearance",
    languageLabel: "Language",
    langAuto: "Browser language",
    themeLabel: "Theme",
    themeSystem: "System",
    themeLight: "Light",
    themeDark: "Dark",
    connection: "Connection",
    apiKey: "API key",
    apiKeyHint: "Only needed when the server was started with an API key. Kept in this browser.",
    unauthorized: "This server needs an API key: enter it in Settings.",
  },
  "zh-CN": {
    appName: "明言",
    newChat: "新对话",
    untitled: "未命名对话",
    conversations: "对话",
    searchPlaceholder: "搜索对话",
    noResults: "没有找到。",
    hitTitle: "标题",
    hitUser: "你",
    hitAssistant: "AI",
    hitArchived: "已归档",
    noConversations: "还没有对话。",
    noArchived: "没有已归档的对话。",
    loadMore: "加载更多",
    showArchived: "已归档的对话",
    showActive: "返回对话列表",
    importChats: "导入",
    exportAll: "全部导出",
    settings: "设置",
    toggleTheme: "浅色 / 深色主题",
    otherLanguage: "English",
    openSidebar: "显示对话列表",
    closeSidebar: "隐藏对话列表",
    more: "更多",
    rename: "重命名",
    renameTitle: "重命名对话",
    pin: "置顶",
    unpin: "取消置顶",
    archive: "归档",
    unarchive: "取消归档",
    exportJson: "导出 JSON",
    exportMarkdown: "导出 Markdown",
    delete: "删除",
    deleteTitle: "删除对话？",
    deleteConfirm: ({ title }) => `将删除“${title}”及其全部消息，且无法恢复。`,
    deleted: "对话已删除。",
    imported: ({ n, m, skipped }) => `已导入 ${n} 个对话（${m} 条消息）` + (skipped ? `，跳过 ${skipped} 项。` : "。"),
    importFailed: "导入失败",
    welcomeTitle: "有什么可以帮你？",
    welcomeText: "可以用中文或英文提问。回答由本服务器上的开放权重模型生成。",
    persona: "角色",
    personaNone: "默认助手",
    composerPlaceholder: "给明言发消息…",
    composerHint: "Enter 发送，Shift+Enter 换行",
    message: "消息",
    send: "发送",
    stop: "停止",
    scrollToBottom: "滚动到最新消息",
    disclaimer: "回答由 AI 生成，可能有误，请核实重要信息。",
    aiGenerated: "AI 生成",
    systemMessage: "系统",
    copy: "复制",
    copyCode: "复制",
    edit: "编辑",
    saveAndSend: "保存并发送",
    regenerate: "重新生成",
    details: "详情",
    previousVersion: "上一个版本",
    nextVersion: "下一个版本",
    generating: "正在生成",
    statusStreaming: "正在生成…",
    statusStopped: "已停止",
    statusError: "出错",
    statusInterrupted: "已中断",
    omittedTurns: ({ n }) => `有 ${n} 轮较早的对话未放入模型的上下文（对话长度超出了模型能读取的范围）。`,
    detailModel: "模型",
    detailPromptTokens: "提示词元数",
    detailCachedTokens: "缓存命中的提示词元",
    detailCompletionTokens: "生成词元数",
    detailSpeed: "速度",
    detailTtft: "首个词元用时",
    detailDuration: "总用时",
    detailFinish: "结束原因",
    detailStatus: "状态",
    detailSeed: "随机种子",
    detailSampling: "采样参数",
    detailCreated: "创建时间",
    remoteImageTitle: ({ url }) => `图片不会自动加载。点击在新标签页中打开 ${url}`,
    image: "图片",
    blockedLink: "已移除不安全的链接",
    cancel: "取消",
    ok: "确定",
    save: "保存",
    close: "关闭",
    conversationSettings: "对话设置",
    scopeConversation: "这些设置只作用于当前对话。",
    scopeNewChat: "当前没有打开的对话：这些设置将用于下一个新对话。",
    model: "模型",
    systemPrompt: "系统提示词",
    systemPromptHint: "助手应如何表现（可选）",
    temperature: "温度",
    topP: "Top p",
    maxTokens: "回复最大词元数",
    seed: "随机种子",
    defaultValue: "默认",
    randomValue: "随机",
    invalidField: ({ field }) => `${field} 的值无效。`,
    settingsSaved: "设置已保存。",
    personas: "角色",
    noPersonas: "还没有保存的角色。",
    personaName: "名称",
    personaPrompt: "这个角色的系统提示词",
    addPersona: "添加角色",
    personaIncomplete: "角色需要名称和系统提示词。",
    appearance: "外观",
    languageLabel: "语言",
    langAuto: "跟随浏览器",
    themeLabel: "主题",
    themeSystem: "跟随系统",
    themeLight: "浅色",
    themeDark: "深色",
    connection: "连接",
    apiKey: "API 密钥",
    apiKeyHint: "仅当服务器设置了 API 密钥时需要。保存在本浏览器中。",
    unauthorized: "此服务器需要 API 密钥：请在设置中填写。",
  },
};

export const LANGS = ["auto", "zh-CN", "en"];
let current = "en";
const listeners = [];

function browserLang() {
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || "en"];
  for (const tag of wanted) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export function langPref() {
  const saved = prefs.get("lang", "auto");
  return LANGS.includes(saved) ? saved : "auto";
}

export const lang = () => current;

/** The string `key` in the current language; `args` fill its placeholders. */
export function t(key, args = {}) {
  const value = STRINGS[current][key] ?? STRINGS.en[key];
  if (value === undefined) return key;
  return typeof value === "function" ? value(args) : value;
}

/** Attributes for h(): the text of `key`, redrawn on a language switch. */
export function tr(key, args = null) {
  return { "data-i18n": key, "data-i18n-args": args ? JSON.stringify(args) : null, text: t(key, args || {}) };
}

export function applyI18n(root = document) {
  document.documentElement.lang = current;
  const argsOf = (el) => (el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : {});
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, argsOf(el));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

/** Switch to `pref` ("auto", "zh-CN", "en"), remember it, and redraw every string. */
export function setLang(pref) {
  prefs.set("lang", pref === "auto" ? null : pref);
  current = pref === "auto" ? browserLang() : pref;
  applyI18n();
  for (const listener of listeners) listener(current);
}

export function toggleLang() {
  setLang(current === "zh-CN" ? "en" : "zh-CN");
}

export function onLangChange(listener) {
  listeners.push(listener);
}

export function initI18n() {
  const pref = langPref();
  current = pref === "auto" ? browserLang() : pref;
  applyI18n();
}

export const strings = STRINGS; // for tests: both languages hold the same keys
