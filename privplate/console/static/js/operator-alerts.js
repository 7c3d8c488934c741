// Live alerts on the operator's page: an EventSource on the console's own stream (cookie
// session, same origin), each new alert cloned from the page's <template> and put at the top.
// Text goes in with textContent only, so nothing an alert carries can become markup. Alerts
// never carry a plate.
//
// A device alert (kind silent_camera or spool_backlog) is no hotlist hit: it is cloned from
// its own <template>, without outcome buttons (the server refuses an outcome for it). The row
// that clears one (``clears`` set) also marks the raising row on the page as cleared.

const list = document.getElementById('alerts');
const template = document.getElementById('alert-template');
const deviceTemplate = document.getElementById('device-alert-template');
const status = document.getElementById('live-status');
const empty = document.getElementById('no-alerts');
const HOTLIST_HIT = template.content.firstElementChild.dataset.kind;
const KINDS = JSON.parse(deviceTemplate.dataset.kinds);

const OUTCOMES = {};
for (const button of template.content.querySelectorAll('button[name="outcome"]')) {
  OUTCOMES[button.value] = button.textContent.trim();
}

function when(iso) {
  // The server's format: "YYYY-MM-DD HH:MM:SS UTC".
  return new Date(iso).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

function fill(item, fields) {
  for (const [name, value] of Object.entries(fields)) {
    item.querySelector(`[data-field="${name}"]`).textContent = value;
  }
}

function showCleared(state, at) {
  state.textContent = `cleared at ${when(at)}`;
  state.className = 'device-state-cleared';
}

function renderDevice(alert) {
  const item = deviceTemplate.content.firstElementChild.cloneNode(true);
  item.id = `alert-${alert.id}`;
  item.dataset.kind = alert.kind;
  const clearing = alert.clears !== null && alert.clears !== undefined;
  const label = KINDS[alert.kind] || alert.kind;
  fill(item, {
    headline: clearing ? `${label} cleared` : label,
    camera_id: alert.camera_id,
    device_id: alert.device_id || '',
    since_label: clearing ? 'at' : 'since',
    observed_at: when(alert.observed_at),
    reason: alert.reason,
  });
  item.querySelector('[data-field="device_part"]').hidden = !alert.device_id;
  item.querySelector('time[data-field="observed_at"]').dateTime = alert.observed_at;
  const state = item.querySelector('[data-field="state"]');
  if (clearing) {
    state.textContent = `this ends the problem of alert ${alert.clears}`;
    state.className = 'device-state-cleared';
  } else if (alert.cleared_at) {
    showCleared(state, alert.cleared_at);
  } else {
    state.textContent = 'not cleared yet';
    state.className = 'device-state-on';
  }
  return item;
}

function render(alert) {
  if (alert.kind !== HOTLIST_HIT) return renderDevice(alert);
  const item = template.content.firstElementChild.cloneNode(true);
  item.id = `alert-${alert.id}`;
  const fields = {
    hotlist: alert.hotlist,
    camera_id: alert.camera_id,
    observed_at: when(alert.observed_at),
    reason: alert.reason,
    case_number: alert.case_number,
    outcome: alert.outcome ? (OUTCOMES[alert.outcome] || alert.outcome) : 'not reported yet',
  };
  fill(item, fields);
  item.querySelector('time[data-field="observed_at"]').dateTime = alert.observed_at;
  item.querySelector('[data-field="via_alternate"]').hidden = !alert.via_alternate;
  item.querySelector('form').action = `/console/operator/alerts/${alert.id}/outcome`;
  return item;
}

function connect() {
  const after = encodeURIComponent(list.dataset.after || '0');
  const source = new EventSource(`/console/operator/alerts/stream?after=${after}`);
  source.addEventListener('open', () => {
    status.textContent = 'Live: new alerts appear at the top of the list.';
  });
  source.addEventListener('error', () => {
    // EventSource reconnects by itself, resuming after the last alert it received. The server
    // ends the stream when the session ends; the reconnect is then sent to the sign-in page,
    // which is no event stream, and EventSource gives up (CLOSED).
    status.textContent = source.readyState === EventSource.CLOSED
      ? 'The live feed has stopped: your session ended. Sign in again to see new alerts.'
      : 'The live feed was interrupted; reconnecting…';
  });
  source.addEventListener('alert', (event) => {
    const alert = JSON.parse(event.data);
    if (document.getElementById(`alert-${alert.id}`)) return;
    list.prepend(render(alert));
    list.dataset.after = String(alert.id);
    empty.hidden = true;
    if (alert.kind === HOTLIST_HIT) {
      status.textContent = `New alert: hotlist ${alert.hotlist} at camera ${alert.camera_id}.`;
      return;
    }
    const raised = alert.clears ? document.getElementById(`alert-${alert.clears}`) : null;
    const state = raised && raised.querySelector('[data-field="state"]');
    if (state && raised.dataset.kind !== HOTLIST_HIT) showCleared(state, alert.observed_at);
    status.textContent = `${alert.clears ? 'Cleared' : 'New camera problem'}: ${alert.reason} `
      + `at camera ${alert.camera_id}.`;
  });
}

connect();
