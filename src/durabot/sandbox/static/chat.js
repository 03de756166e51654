// The sandbox chat page: write as a Telegram user, see the bot's answers, press its buttons.
// The conversation is kept in localStorage per bot id and chat id, so what was said before the bot
// (and the sandbox inside it) restarted is still shown, greyed, as "earlier".
"use strict";

const POLL_MS = 500;
const MAX_EARLIER = 200; // earlier messages kept per chat
const api = "/sandbox/api";
const elements = {
  bot: document.getElementById("bot-select"),
  chatId: document.getElementById("chat-id-input"),
  status: document.getElementById("connection-status"),
  messages: document.getElementById("messages"),
  composer: document.getElementById("composer"),
  input: document.getElementById("message-input"),
  send: document.getElementById("send-button"),
  photo: document.getElementById("photo-button"),
  toast: document.getElementById("toast"),
};
const rendered = new Map(); // message_id -> {element, signature}
let answersSeen = null; // callback answers already shown; null until the first look
let toastTimer = null;
let shownEpoch = null; // the sandbox epoch whose messages are on screen; a new one means a restart or reset

function token() { return elements.bot.value; }
function chatId() { return Number.parseInt(elements.chatId.value, 10); }
function botId() { return token().split(":")[0]; }

function setStatus(text, isError = false) {
  if (elements.status.textContent !== text) { elements.status.textContent = text; }
  elements.status.classList.toggle("error", isError);
}

async function request(path, options = {}) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const body = await response.json();
  if (!response.ok) { throw new Error(body.description || `HTTP ${response.status}`); }
  return body;
}

function botPath(suffix) { return `${api}/${encodeURIComponent(token())}/${suffix}`; }

async function loadBots() {
  const wanted = new URLSearchParams(location.search).get("token") || elements.bot.value;
  const { bots } = await request(`${api}/bots`);
  const tokens = bots.map((bot) => bot.token);
  if (wanted && !tokens.includes(wanted)) { tokens.unshift(wanted); }
  const current = elements.bot.value;
  if (tokens.join("\n") !== Array.from(elements.bot.options, (option) => option.value).join("\n")) {
    elements.bot.replaceChildren(...tokens.map((value) => new Option(`${value.split(":")[0]} (${value.slice(0, 14)}…)`, value)));
  }
  elements.bot.value = current && tokens.includes(current) ? current : (wanted || tokens[0] || "");
  const ready = Boolean(token());
  for (const control of [elements.input, elements.send, elements.photo]) { control.disabled = !ready; }
  setStatus(ready ? `Chatting as user ${chatId()} with bot ${token().split(":")[0]}.` : "No bot yet: start the bot against this sandbox, or add ?token=… to the address.");
}

function signature(message) {
  return JSON.stringify([message.text, message.caption, message.reply_markup, message.image_url, message.edit_date]);
}

function buildKeyboard(message) {
  const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
  if (!rows.length) { return null; }
  const keyboard = document.createElement("div");
  keyboard.className = "keyboard";
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "keyboard-row";
    for (const button of row) {
      const element = document.createElement("button");
      element.type = "button";
      element.className = "inline-button";
      element.textContent = button.text;
      element.dataset.callbackData = button.callback_data || "";
      element.addEventListener("click", () => pressButton(message.message_id, button));
      line.append(element);
    }
    keyboard.append(line);
  }
  return keyboard;
}

function fillMessage(element, message) {
  const parts = [];
  if (message.image_url) {
    const image = document.createElement("img");
    image.className = "image";
    image.src = message.image_url;
    image.alt = message.content === "sticker" ? "Sticker" : "Photo";
    parts.push(image);
  }
  const body = message.text ?? message.caption;
  if (body) {
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = body;
    parts.push(text);
  } else if (!message.image_url) {
    const placeholder = document.createElement("div");
    placeholder.className = "placeholder";
    placeholder.textContent = `[${message.content}]`;
    parts.push(placeholder);
  }
  const keyboard = buildKeyboard(message);
  if (keyboard) { parts.push(keyboard); }
  const meta = document.createElement("div");
  meta.className = "meta";
  const time = new Date(message.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.textContent = message.edited ? `edited ${time}` : time;
  parts.push(meta);
  element.replaceChildren(...parts);
}

function render(messages) {
  const nearBottom = elements.messages.scrollHeight - elements.messages.scrollTop - elements.messages.clientHeight < 80;
  const present = new Set();
  let added = false;
  for (const message of messages) {
    present.add(message.message_id);
    const known = rendered.get(message.message_id);
    const current = signature(message);
    if (known && known.signature === current) { continue; }
    const element = known ? known.element : document.createElement("div");
    element.className = `message ${message.from_bot ? "bot" : "user"}`;
    element.dataset.messageId = String(message.message_id);
    fillMessage(element, message);
    if (!known) { elements.messages.append(element); added = true; }
    rendered.set(message.message_id, { element, signature: current });
  }
  for (const [id, { element }] of rendered) {
    if (!present.has(id)) { element.remove(); rendered.delete(id); }
  }
  if (!messages.length && !elements.messages.querySelector(".empty")) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No messages yet. Say /start.";
    elements.messages.append(empty);
  } else if (messages.length) {
    elements.messages.querySelector(".empty")?.remove();
  }
  if (added && nearBottom) { elements.messages.scrollTop = elements.messages.scrollHeight; }
}

// History: {epoch, live: [messages of that epoch], earlier: [messages of epochs before]}, per bot and chat.
function historyKey() { return `durabot-sandbox:history:${botId()}:${chatId()}`; }

function loadHistory() {
  try {
    const stored = JSON.parse(localStorage.getItem(historyKey()) || "null");
    if (stored && Array.isArray(stored.live) && Array.isArray(stored.earlier)) { return stored; }
  } catch (error) { /* unreadable history is started afresh */ }
  return { epoch: null, live: [], earlier: [] };
}

function saveHistory(history) {
  try { localStorage.setItem(historyKey(), JSON.stringify(history)); } catch (error) { /* storage full or off */ }
}

function remembered(message) {
  const { message_id, from_bot, content, text, caption, date, edited } = message;
  return { message_id, from_bot, content, text, caption, date, edited };
}

function recordHistory(epoch, messages) {
  const history = loadHistory();
  if (history.epoch !== epoch) {
    history.earlier = history.earlier.concat(history.live).slice(-MAX_EARLIER);
    history.epoch = epoch;
  }
  history.live = messages.map(remembered);
  saveHistory(history);
  return history;
}

function showEarlier(earlier) {
  elements.messages.querySelector(".earlier-messages")?.remove();
  if (!earlier.length) { return; }
  const section = document.createElement("section");
  section.className = "earlier-messages";
  section.setAttribute("aria-label", "Earlier messages");
  for (const message of earlier) {
    const element = document.createElement("div");
    element.className = `message earlier ${message.from_bot ? "bot" : "user"}`;
    fillMessage(element, { ...message, reply_markup: null, image_url: null });
    section.append(element);
  }
  const divider = document.createElement("p");
  divider.className = "earlier-divider";
  divider.textContent = "Earlier — before the bot restarted";
  section.append(divider);
  elements.messages.prepend(section);
}

function showToast(text, alert) {
  elements.toast.textContent = text;
  elements.toast.classList.toggle("alert", alert);
  elements.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { elements.toast.hidden = true; }, alert ? 6000 : 3000);
}

async function refresh() {
  if (!token() || Number.isNaN(chatId())) { return; }
  const { epoch, messages } = await request(`${botPath("messages")}?chat_id=${chatId()}`);
  const history = recordHistory(epoch, messages);
  if (epoch !== shownEpoch) {
    restart();
    shownEpoch = epoch;
    showEarlier(history.earlier);
  }
  render(messages);
  const { callback_answers: answers } = await request(botPath("callback_answers"));
  for (const answer of answers.slice(answersSeen ?? answers.length)) {
    if (answer.chat_id === chatId() && answer.text) { showToast(answer.text, answer.show_alert); }
  }
  answersSeen = answers.length;
}

async function inject(update) {
  try {
    await request(botPath("updates"), { method: "POST", body: JSON.stringify({ chat_id: chatId(), user_id: chatId(), ...update }) });
    await refresh();
  } catch (error) {
    setStatus(`Could not send: ${error.message}`, true);
  }
}

function pressButton(messageId, button) {
  if (button.url) { window.open(button.url, "_blank", "noopener"); return; }
  if (button.callback_data) { inject({ type: "callback", message_id: messageId, data: button.callback_data }); }
}

elements.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = elements.input.value;
  if (!text.trim()) { return; }
  elements.input.value = "";
  inject({ type: "message", text });
});

elements.photo.addEventListener("click", () => {
  const caption = elements.input.value.trim();
  elements.input.value = "";
  inject({ type: "photo", ...(caption ? { caption } : {}) });
});

function restart() {
  rendered.clear();
  elements.messages.replaceChildren();
  answersSeen = null;
  shownEpoch = null;
}

elements.bot.addEventListener("change", restart);
elements.chatId.addEventListener("change", restart);

async function loop() {
  try {
    await loadBots();
    await refresh();
  } catch (error) {
    setStatus(`Sandbox unreachable: ${error.message}`, true);
  }
  setTimeout(loop, POLL_MS);
}

loop();
elements.input.focus();
