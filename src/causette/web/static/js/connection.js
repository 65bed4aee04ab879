// The one WebSocket of the tab: hello with cursors, resume, exponential backoff with jitter.
// Server frames are JSON arrays of events; each event is handed to onEvent in order.

const BASE_DELAY = 500;
const MAX_DELAY = 30000;

export function backoffDelay(attempt) {
  const base = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * States: 'connecting' (first connection), 'connected' (welcome received), 'reconnecting',
 * 'offline' (network down, or closed for good after a bye without reconnect), 'stopped'.
 */
export class Connection {
  constructor({ hello, onEvent, onState, onClose }) {
    this.hello = hello; // () => hello command
    this.onEvent = onEvent; // (event) => void
    this.onState = onState; // (state) => void
    this.onClose = onClose; // ({welcomed, bye}) => void, after every close
    this.ws = null;
    this.state = 'stopped';
    this.attempt = 0;
    this.timer = null;
    this.welcomed = false;
    this.everConnected = false;
    this.bye = null;
    this.stopped = true;
    this._online = () => { if (!this.stopped && this.state !== 'connected' && !this._final()) this.reconnectNow(); };
    this._offline = () => { if (!this.stopped && this.state !== 'connected') this._setState('offline'); };
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.everConnected = false;
    window.addEventListener('online', this._online);
    window.addEventListener('offline', this._offline);
    this._open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this._online);
    window.removeEventListener('offline', this._offline);
    const ws = this.ws;
    this.ws = null;
    if (ws) try { ws.close(1000); } catch { /* ignore */ }
    this._setState('stopped');
  }

  get connected() {
    return this.state === 'connected';
  }

  /** Send a command once welcomed. Returns false when not connected (nothing is queued). */
  send(command) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.welcomed) return false;
    ws.send(JSON.stringify(command));
    return true;
  }

  /** Drop this connection and open a new one (a gap was seen): the hello resumes every stream. */
  restart() {
    if (this.stopped) return;
    const ws = this.ws;
    this.ws = null;
    if (ws) try { ws.close(1000); } catch { /* ignore */ }
    this._schedule();
  }

  /** Reconnect now, forgetting the backoff (e.g. "use here", network back). */
  reconnectNow() {
    if (this.stopped) this.stopped = false;
    clearTimeout(this.timer);
    this.attempt = 0;
    const ws = this.ws;
    this.ws = null;
    if (ws) try { ws.close(1000); } catch { /* ignore */ }
    this._open();
  }

  _final() {
    return this.bye && this.bye.reconnect === false;
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    if (this.onState) this.onState(state);
  }

  _open() {
    clearTimeout(this.timer);
    this.welcomed = false;
    this.bye = null;
    this._setState(this.everConnected ? 'reconnecting' : 'connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws`);
    } catch {
      this._schedule();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      ws.send(JSON.stringify(this.hello()));
    });
    ws.addEventListener('message', (e) => {
      if (ws !== this.ws || typeof e.data !== 'string') return;
      let events;
      try { events = JSON.parse(e.data); } catch { return; }
      if (!Array.isArray(events)) events = [events];
      for (const ev of events) {
        if (ws !== this.ws) break; // the handler restarted the connection (gap): drop the rest
        if (!ev || typeof ev !== 'object') continue;
        if (ev.type === 'welcome') {
          this.welcomed = true;
          this.everConnected = true;
          this.attempt = 0;
          this._setState('connected');
        } else if (ev.type === 'bye') {
          this.bye = ev;
        }
        try {
          this.onEvent(ev);
        } catch (err) {
          console.error('causette: event handler failed', ev.type, err); // eslint-disable-line no-console
        }
      }
    });
    ws.addEventListener('close', () => {
      if (ws !== this.ws) return;
      this.ws = null;
      const info = { welcomed: this.welcomed, bye: this.bye };
      this.welcomed = false;
      if (this.stopped) return;
      if (this._final()) {
        this._setState('offline');
      } else {
        this._schedule();
      }
      if (this.onClose) this.onClose(info);
    });
  }

  _schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const delay = backoffDelay(this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    this._setState(navigator.onLine === false ? 'offline' : 'reconnecting');
    this.timer = setTimeout(() => this._open(), delay);
  }
}
