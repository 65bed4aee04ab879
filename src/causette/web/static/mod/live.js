// The live queue: /mod/ws sends JSON arrays of events (`ready`, `case`, `appeal`, `bye`).
// Read-only. Reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter); after
// each `ready` the console reloads what it shows, so nothing is missed while disconnected.

export class Live {
  constructor({ onReady, onEvent, onState, onEnded, beforeReconnect }) {
    this.onReady = onReady;
    this.beforeReconnect = beforeReconnect;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onEnded = onEnded;
    this.ws = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.delay = 500;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
    this.onState('offline');
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/mod/ws`);
    this.ws = ws;
    this.onState('connecting');
    let ended = false;
    ws.addEventListener('message', (msg) => {
      let events;
      try { events = JSON.parse(msg.data); } catch { return; }
      if (!Array.isArray(events)) return;
      for (const event of events) {
        if (event.type === 'ready') {
          this.delay = 500;
          this.onState('live');
          this.onReady(event);
        } else if (event.type === 'bye') {
          if (!event.reconnect) {
            ended = true;
            this.onEnded(event);
          }
        } else {
          this.onEvent(event);
        }
      }
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped || ended) {
        this.onState('offline');
        return;
      }
      // A refused handshake (401: the session is over) looks like any lost connection here:
      // the session is checked over HTTP before trying again.
      this.onState('reconnecting', ev.code);
      const wait = Math.min(30000, this.delay) * (0.75 + Math.random() / 2);
      this.delay = Math.min(30000, this.delay * 2);
      this.timer = setTimeout(async () => {
        if (this.stopped) return;
        if (this.beforeReconnect && !(await this.beforeReconnect())) return;
        this.connect();
      }, wait);
    });
  }
}
