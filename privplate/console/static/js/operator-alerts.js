// Live alerts on the operator's page: an EventSource on the console's own stream (cookie
// session, same origin), each new alert cloned from the page's <template> and put at the top.
// Text goes in with textContent only, so nothing an alert carries can become markup. Alerts
// never carry a plate.

const list = document.getElementById('alerts');
const template = document.getElementById('alert-template');
const status = document.getElementById('live-status');
const empty = document.getElementById('no-alerts');

const OUTCOMES = {};
for (const button of template.content.querySelectorAll('button[name="outcome"]')) {
  OUTCOMES[button.value] = button.textContent.trim();
}

function when(iso) {
  // The server's format: "YYYY-MM-DD HH:MM:SS UTC".
  return new Date(iso).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

function render(alert) {
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
  for (const [name, value] of Object.entries(fields)) {
    item.querySelector(`[data-field="${name}"]`).textContent = value;
  }
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
    status.textContent = `New alert: hotlist ${alert.hotlist} at camera ${alert.camera_id}.`;
  });
}

connect();
