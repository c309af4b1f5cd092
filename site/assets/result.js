// thanks.html and error.html, with JavaScript: show the request id from
// `thanks.html?id=…&status=…` and refine the message of `error.html?code=…&field=…&retry=…`. Without
// this script the pages still show the outcome the URL's fragment names (CSS :target).
import { rateLimitedText, t } from './i18n.js';

const lang = document.documentElement.lang === 'fr' ? 'fr' : 'en';
const params = new URLSearchParams(window.location.search);
const FIELDS = ['email', 'displayName', 'company', 'justification', 'access', 'acceptTerms'];

// A link without the fragment (a bookmark, a copied URL) still shows the right outcome.
// A repeat sign-up of an invited guest says whether the invitation was sent again.
const resent = { 1: 'resent', 0: 'already_sent' }[params.get('resent')];
const outcome = resent || params.get('status') || params.get('code');
if (!window.location.hash && outcome && /^[a-z_]{1,40}$/.test(outcome) && document.getElementById(outcome)) {
  window.location.replace(`#${outcome}`);
}

// The request id is a ULID: anything else in the address is not shown.
const id = params.get('id');
const reference = document.getElementById('reference');
if (reference && id && /^[0-9A-HJKMNP-TV-Z]{26}$/i.test(id)) {
  document.getElementById('request-id').textContent = id;
  reference.hidden = false;
}

const field = params.get('field');
const note = document.getElementById('field-note');
if (note && field && FIELDS.includes(field)) {
  const specific = `error.${params.get('code')}.${field}`;
  const block = document.getElementById(params.get('code') || '');
  if (block && t(lang, specific) !== specific) block.firstElementChild.textContent = t(lang, specific);
  const label = t(lang, `field.${field}`);
  if (label !== `field.${field}`) {
    note.textContent = t(lang, 'error.field', { field: label.replace(/\s*\(.*\)$/, '') });
    note.hidden = false;
  }
}

// A 429 without JavaScript: the API's redirect carries its Retry-After as `retry` (seconds),
// said here in human units as the form's script says it.
const retry = Number.parseInt(params.get('retry') || '', 10);
const limited = document.getElementById('rate_limited');
if (limited && params.get('code') === 'rate_limited' && /^\d{1,7}$/.test(params.get('retry') || '') && retry > 0) {
  limited.firstElementChild.textContent = rateLimitedText(lang, retry);
}

// The language switcher keeps the outcome.
const switcher = document.querySelector('.lang-switch');
if (switcher) {
  switcher.href = `${switcher.getAttribute('href')}${window.location.search}${window.location.hash}`;
  switcher.addEventListener('click', () => {
    try {
      localStorage.setItem('lang', switcher.dataset.lang);
    } catch {
      // storage may be off
    }
  });
}
