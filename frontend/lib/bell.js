// The navigation's bell: the unread count of a signed-in trader, live from the
// `notification` events of /ws/user/, on every page. Each new message also shows for a few
// seconds in a toast, is added to the top of the notifications page's list when that page is
// open, and is announced to the page's own scripts as a "meridian:notification" DOM event
// (the alerts page repaints its alerts when one of them fires).
import { api } from "./api.js";
import { escapeHtml } from "./dom.js";
import { formatDateTime } from "./format.js";
import { ReconnectingSocket } from "./socket.js";

export const NOTIFICATION_EVENT = "meridian:notification";
// A page whose script opens /ws/user/ itself (marked data-user-stream: the market page's
// trading desk, the Portfolio page) hands the bell its frames with this event, so the page
// keeps one socket to the user stream.
const USER_MESSAGE_EVENT = "meridian:user-message";

export function shareUserMessage(message) {
  document.dispatchEvent(new CustomEvent(USER_MESSAGE_EVENT, { detail: message }));
}
const TOAST_MS = 8000;

// Counts unread messages by id: a coalesced partial fill arrives again with the same id and
// its newer text, and is still one unread message.
export class UnreadCounter {
  constructor(count = 0) {
    this.count = Math.max(0, Number(count) || 0);
    this.seen = new Set();
    this.arrivedDuringSync = null;
  }

  // A notification from the stream: true when it is a new unread one (the count went up).
  arrive(notification) {
    if (!notification || notification.id === undefined || notification.id === null) return false;
    if (this.arrivedDuringSync) this.arrivedDuringSync.add(notification.id);
    if (this.seen.has(notification.id)) return false;
    this.seen.add(notification.id);
    if (notification.read_at) return false;
    this.count += 1;
    return true;
  }

  // Call before reading the unread list, then sync() with its answer.
  startSync() {
    this.arrivedDuringSync = new Set();
  }

  // The read failed: go on counting from the events alone.
  abandonSync() {
    this.arrivedDuringSync = null;
  }

  // The API's unread list (newest first, the first page): its count is the truth, plus what
  // arrived while it was read and is newer than everything it lists (it committed after the read).
  sync({ count, ids }) {
    const listed = new Set(ids);
    const newer = [...(this.arrivedDuringSync || [])].filter((id) => !listed.has(id));
    this.arrivedDuringSync = null;
    this.seen = new Set([...listed, ...newer]);
    this.count = Math.max(0, Number(count) || 0) + newer.length;
  }
}

function paintBadge(badge, count) {
  badge.textContent = String(count);
  badge.setAttribute("aria-label", `${count} unread`);
  badge.hidden = count === 0;
  // the phone's menu button shows it while the navigation is folded
  document.querySelector("[data-nav-toggle]")?.setAttribute("data-unread", String(count));
}

function toastStack() {
  let stack = document.getElementById("toasts");
  if (!stack) {
    stack = document.createElement("div");
    stack.id = "toasts";
    stack.className = "toast-stack";
    stack.setAttribute("role", "status");
    stack.setAttribute("aria-live", "polite");
    document.body.append(stack);
  }
  return stack;
}

function showToast(notification) {
  const toast = document.createElement("a");
  toast.className = "toast";
  toast.href = "/notifications/";
  toast.dataset.notification = String(notification.id);
  toast.dataset.kind = notification.kind || "";
  toast.innerHTML = `<strong class="toast-title">${escapeHtml(notification.title)}</strong>${
    notification.body ? `<span class="toast-body">${escapeHtml(notification.body)}</span>` : ""
  }`;
  const stack = toastStack();
  stack.querySelectorAll(`[data-notification="${CSS.escape(String(notification.id))}"]`).forEach((old) => old.remove());
  stack.prepend(toast);
  while (stack.children.length > 3) stack.lastElementChild.remove();
  setTimeout(() => toast.remove(), TOAST_MS);
}

// The notifications page (/notifications/): the message at the top of its list, or its row
// updated in place when it comes again (a coalesced partial fill).
function showInList(notification) {
  const card = document.querySelector("[data-notice-list]");
  if (!card) return;
  let list = card.querySelector(".notice-list");
  if (!list) {
    card.innerHTML = '<ul class="notice-list"></ul>';
    list = card.querySelector(".notice-list");
  }
  const id = String(notification.id);
  let item = list.querySelector(`[data-notification="${CSS.escape(id)}"]`);
  if (!item) {
    item = document.createElement("li");
    item.dataset.notification = id;
    list.prepend(item);
  }
  item.className = `notice${notification.read_at ? "" : " unread"}`;
  item.innerHTML = `<span class="notice-dot" aria-hidden="true"></span>
    <div>
      <p class="notice-title">${escapeHtml(notification.title)}${notification.read_at ? "" : '<span class="visually-hidden"> (unread)</span>'}</p>
      ${notification.body ? `<p class="notice-body">${escapeHtml(notification.body)}</p>` : ""}
    </div>
    <time datetime="${escapeHtml(notification.created_at)}">${escapeHtml(formatDateTime(notification.created_at, { year: true }))}</time>`;
}

export function startBell(badge) {
  const link = badge.closest("[data-bell]");
  const counter = new UnreadCounter(badge.textContent.trim());
  paintBadge(badge, counter.count);

  async function resync() {
    counter.startSync();
    try {
      const body = await api("/api/v1/notifications?unread=1");
      counter.sync({ count: body.count, ids: (body.results || []).map((n) => n.id) });
      paintBadge(badge, counter.count);
    } catch {
      counter.abandonSync();
    }
  }

  function onMessage(message) {
    if (!message) return;
    if (message.type === "snapshot") {
      // (Re)connected: what arrived while the socket was away is in the count from the API.
      resync().then(() => link?.setAttribute("data-live", "true"));
      return;
    }
    if (message.type !== "notification" || !message.notification) return;
    const notification = message.notification;
    const fresh = !counter.seen.has(notification.id);
    if (counter.arrive(notification)) paintBadge(badge, counter.count);
    if (fresh) showToast(notification);
    showInList(notification);
    document.dispatchEvent(new CustomEvent(NOTIFICATION_EVENT, { detail: notification }));
  }

  if (document.querySelector("[data-user-stream]")) {
    document.addEventListener(USER_MESSAGE_EVENT, (event) => onMessage(event.detail));
    return { counter, stream: null };
  }
  const stream = new ReconnectingSocket("/ws/user/", {
    minDelay: 1000,
    maxDelay: 30000,
    healthyOnOpen: false,
    onMessage: (message) => {
      if (message.type === "snapshot") stream.healthy();
      onMessage(message);
    },
    onClose: () => link?.setAttribute("data-live", "false"),
  });
  return { counter, stream };
}
