// Websockets: one reconnecting socket class for /ws/market/ and /ws/user/, and the page's one
// shared /ws/market/ connection, on which every part of a page subscribes its channels.

// Where the websockets are: the page's <meta name="ws-base"> (settings.WS_PUBLIC_URL). Empty:
// the page's own origin (embedded mode; a proxy splitting /ws/ off). ":8001": the page's host
// at that port (the stack on one machine). "wss://ws.example.com": that base.
export function wsBase(base, loc) {
  const scheme = loc.protocol === "https:" ? "wss" : "ws";
  const value = (base || "").trim().replace(/\/+$/, "");
  if (!value) return `${scheme}://${loc.host}`;
  if (/^:\d+$/.test(value)) return `${scheme}://${loc.hostname}${value}`; // hostname keeps an IPv6 address's brackets
  if (/^wss?:\/\//.test(value)) return value;
  if (/^https?:\/\//.test(value)) return value.replace(/^http/, "ws");
  return `${scheme}://${value}`;
}

const pageBase = () =>
  typeof document === "undefined" ? "" : (document.querySelector('meta[name="ws-base"]')?.content ?? "");

export const wsUrl = (path) => `${wsBase(pageBase(), location)}${path}`;

// A websocket that reopens itself after every close, waiting longer each time (doubling from
// minDelay up to maxDelay, with jitter so a restarted server is not hit by every page at
// once). The wait starts again from minDelay once the connection is healthy: on open, or,
// with healthyOnOpen: false, when the owner calls healthy() (a server may accept a socket and
// then refuse it, as /ws/user/ does with 4401 for a signed-out session).
export class ReconnectingSocket {
  constructor(path, { onOpen, onMessage, onClose, onConnecting, minDelay = 500, maxDelay = 10000, healthyOnOpen = true } = {}) {
    this.path = path;
    this.handlers = { onOpen, onMessage, onClose, onConnecting };
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.healthyOnOpen = healthyOnOpen;
    this.delay = minDelay;
    this.ws = null;
    this.connect();
  }

  connect() {
    this.handlers.onConnecting?.();
    let ws;
    try {
      ws = new WebSocket(wsUrl(this.path));
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.healthyOnOpen) this.healthy();
      this.handlers.onOpen?.();
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handlers.onMessage?.(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.handlers.onClose?.(event);
      this.retry();
    });
  }

  retry() {
    const wait = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.delay * 2, this.maxDelay);
    setTimeout(() => this.connect(), wait);
  }

  healthy() {
    this.delay = this.minDelay;
  }

  get open() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  send(message) {
    if (this.open) this.ws.send(JSON.stringify(message));
  }
}

// The page's /ws/market/ connection. Each part of a page subscribes the channels it paints
// (ticker:, candles:, book:, trades:, index:) with a handler; a channel is subscribed on the
// server while at least one handler wants it, and everything is subscribed again after a
// reconnect. State listeners hear "connecting", "live" and "offline"; <body data-stream>
// follows it too.
class MarketFeed {
  constructor() {
    this.handlers = new Map(); // channel -> Set of handlers
    this.listeners = new Set();
    this.state = "connecting";
    this.socket = new ReconnectingSocket("/ws/market/", {
      onConnecting: () => this.setState("connecting"),
      onOpen: () => {
        this.setState("live");
        if (this.handlers.size) this.socket.send({ op: "subscribe", channels: [...this.handlers.keys()] });
      },
      onMessage: (message) => this.dispatch(message),
      onClose: () => this.setState("offline"),
    });
  }

  setState(state) {
    this.state = state;
    document.body.dataset.stream = state === "live" ? "live" : state === "offline" ? "reconnecting" : "connecting";
    this.listeners.forEach((listener) => listener(state));
  }

  // Calls listener(state) now and on every change.
  onState(listener) {
    this.listeners.add(listener);
    listener(this.state);
    return () => this.listeners.delete(listener);
  }

  // handler(message) gets every frame of these channels, snapshots first. Returns the undo.
  subscribe(channels, handler) {
    const fresh = [];
    for (const channel of channels) {
      if (!this.handlers.has(channel)) {
        this.handlers.set(channel, new Set());
        fresh.push(channel);
      }
      this.handlers.get(channel).add(handler);
    }
    if (fresh.length) this.socket.send({ op: "subscribe", channels: fresh });
    return () => this.unsubscribe(channels, handler);
  }

  unsubscribe(channels, handler) {
    const gone = [];
    for (const channel of channels) {
      const set = this.handlers.get(channel);
      if (!set) continue;
      set.delete(handler);
      if (!set.size) {
        this.handlers.delete(channel);
        gone.push(channel);
      }
    }
    if (gone.length) this.socket.send({ op: "unsubscribe", channels: gone });
  }

  // A fresh snapshot of a channel: what the server sends on (re)subscribing.
  resubscribe(channel) {
    this.socket.send({ op: "unsubscribe", channels: [channel] });
    this.socket.send({ op: "subscribe", channels: [channel] });
  }

  dispatch(message) {
    if (message.event === "error") {
      console.warn("market stream:", message.message, message.channels || "");
      return;
    }
    const handlers = message.channel && this.handlers.get(message.channel);
    if (handlers) handlers.forEach((handler) => handler(message));
  }
}

let feed = null;

// The page's one market feed, opened on first use.
export function marketFeed() {
  if (!feed) feed = new MarketFeed();
  return feed;
}
