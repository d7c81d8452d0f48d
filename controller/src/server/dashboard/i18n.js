// The dashboard's texts in English and Chinese. The language is the one chosen with the
// switch (kept in localStorage), else the browser's (navigator.language, which follows
// what it sends as Accept-Language).
"use strict";
const TEXTS = {
  en: {
    "login.title": "Sign in", "login.help": "The dashboard takes one of the REST API's tokens (the environment variable that [server.api] tokens_env names).",
    "login.wrong": "That token is not one of this controller's.", "login.token": "API token", "login.submit": "Sign in", "logout": "Sign out",
    "tab.sources": "Sources", "tab.live": "Live phones", "tab.conversations": "Conversations", "tab.dlq": "Dead letters", "tab.grants": "Grants",
    "col.name": "Name", "col.platform": "Platform", "col.running": "Running", "col.connected": "Connected", "col.reader": "Reader",
    "col.last_read": "Last read", "col.last_success": "Last sent", "col.last_failure": "Last failure", "col.rejections": "Refused callbacks",
    "col.handler": "Handler", "col.error": "Error", "col.attempts": "Attempts", "col.message": "Message", "col.at": "When",
    "col.user": "User", "col.scene": "Scene", "col.command": "Command", "col.expires": "Expires", "col.by": "Granted by",
    "live.hint": "Each screen the phone reads, with what was recognised on it boxed; screenshots are taken only while this page is open.",
    "live.none": "No phone runs in this controller.", "live.read": "Read on screen", "live.log": "Received and sent", "live.waiting": "Waiting for the phone's next read…",
    "yes": "yes", "no": "no", "unknown": "—", "replay": "Replay", "drop": "Drop", "revoke": "Revoke", "grant.give": "Grant",
    "dlq.empty": "No dead letters.", "conv.empty": "No conversations yet.", "conv.pick": "Pick a conversation.",
    "screen.conversation_list": "conversation list", "screen.chat": "chat", "screen.dialog": "dialog", "screen.hidden_tree": "hidden tree", "screen.not_wechat": "not WeChat", "screen.other": "other screen",
    "never": "never", "failed": "failed",
  },
  zh: {
    "login.title": "登录", "login.help": "仪表盘使用 REST API 的令牌（[server.api] tokens_env 指定的环境变量）。",
    "login.wrong": "该令牌不属于此控制器。", "login.token": "API 令牌", "login.submit": "登录", "logout": "退出",
    "tab.sources": "消息源", "tab.live": "手机实况", "tab.conversations": "会话", "tab.dlq": "死信队列", "tab.grants": "授权",
    "col.name": "名称", "col.platform": "平台", "col.running": "运行中", "col.connected": "已连接", "col.reader": "读取方式",
    "col.last_read": "上次读取", "col.last_success": "上次发送", "col.last_failure": "上次失败", "col.rejections": "拒绝的回调",
    "col.handler": "处理器", "col.error": "错误", "col.attempts": "尝试次数", "col.message": "消息", "col.at": "时间",
    "col.user": "用户", "col.scene": "场景", "col.command": "命令", "col.expires": "到期", "col.by": "授权者",
    "live.hint": "手机读取的每一屏，识别出的元素用方框标出；仅在此页面打开时截图。",
    "live.none": "此控制器没有运行手机。", "live.read": "屏幕上读到的", "live.log": "收到与发出", "live.waiting": "等待手机下一次读取…",
    "yes": "是", "no": "否", "unknown": "—", "replay": "重放", "drop": "丢弃", "revoke": "撤销", "grant.give": "授权",
    "dlq.empty": "没有死信。", "conv.empty": "还没有会话。", "conv.pick": "请选择一个会话。",
    "screen.conversation_list": "会话列表", "screen.chat": "聊天", "screen.dialog": "对话框", "screen.hidden_tree": "界面树被隐藏", "screen.not_wechat": "非微信", "screen.other": "其他界面",
    "never": "从未", "failed": "失败",
  },
};

function lang() {
  const chosen = localStorage.getItem("tapwire.lang");
  if (chosen && TEXTS[chosen]) return chosen;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

function t(key) {
  return TEXTS[lang()][key] ?? TEXTS.en[key] ?? key;
}

function applyLang() {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  const box = document.getElementById("lang");
  if (box) {
    box.replaceChildren();
    for (const [code, label] of [["zh", "中文"], ["en", "English"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.id = "lang-" + code;
      b.textContent = label;
      if (code === lang()) b.className = "active";
      b.onclick = () => { localStorage.setItem("tapwire.lang", code); applyLang(); document.dispatchEvent(new Event("langchange")); };
      box.append(b);
    }
  }
}

document.addEventListener("DOMContentLoaded", applyLang);
