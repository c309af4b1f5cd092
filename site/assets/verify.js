// verify.html: the page the verification mail links to (`verify.html#t=<token>`). The token
// is in the fragment, which never reaches a server, and nothing happens until the partner
// presses the one button: a mail scanner that opens the link changes nothing. The button
// posts the token to /api/verify and the page says what happens next.
import { t } from './i18n.js';

const lang = document.documentElement.lang === 'fr' ? 'fr' : 'en';
const token = new URLSearchParams(window.location.hash.slice(1)).get('t');
const form = document.getElementById('verify');
const button = document.getElementById('confirm');
const status = document.getElementById('status');

function show(kind, text) {
  status.className = `status ${kind}`;
  status.textContent = text;
  status.focus();
}

// The language switcher keeps the token.
const switcher = document.querySelector('.lang-switch');
if (switcher) switcher.href = `${switcher.getAttribute('href')}${window.location.hash}`;

if (!token) {
  form.hidden = true;
  show('problem', t(lang, 'verify.missing'));
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    let response;
    try {
      response = await fetch(form.action, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ token }),
      });
    } catch {
      show('problem', t(lang, 'error.network'));
      return;
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      // not JSON: judged by the status below
    }
    if (response.status === 200 && answer) {
      const key =
        answer.changed === false
          ? 'verify.already'
          : answer.status === 'pending_approval'
            ? 'verify.done.pending_approval'
            : 'verify.done.queued';
      form.hidden = true;
      show('success', `${t(lang, key)} ${t(lang, 'result.reference')} ${answer.requestId}`);
      return;
    }
    const code = typeof answer?.code === 'string' ? answer.code : '';
    const known = { invalid_token: 'verify.invalid_token', verification_expired: 'verify.verification_expired', rate_limited: 'error.rate_limited' };
    show('problem', t(lang, known[code] || 'verify.error'));
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
});
