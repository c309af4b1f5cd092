// The sign-up form, with JavaScript: posts JSON with fetch and shows the API's answer in the
// page (the request id, or the problem's message on the field it names). Without this
// script the same form posts urlencoded and the API answers with a 303 to thanks.html or
// error.html. The access options, the terms and the captcha come from config.json, which
// `b2b-signup site config` generates from the policy.
import { ERROR_CODES, forbiddenLocalCharacter, maskAddress, rateLimitedText, t } from './i18n.js';

const FIELDS = ['email', 'displayName', 'company', 'justification', 'access', 'acceptTerms'];
const CAPTCHA_FIELDS = ['captchaToken', 'cf-turnstile-response', 'h-captcha-response', 'g-recaptcha-response'];
const CODES = new Set(ERROR_CODES);
// Each provider's widget: the element it renders into, and its script.
const CAPTCHA = {
  turnstile: { className: 'cf-turnstile', script: 'https://challenges.cloudflare.com/turnstile/v0/api.js', api: 'turnstile' },
  hcaptcha: { className: 'h-captcha', script: 'https://js.hcaptcha.com/1/api.js', api: 'hcaptcha' },
  recaptcha: { className: 'g-recaptcha', script: 'https://www.google.com/recaptcha/api.js', api: 'grecaptcha' },
};

const lang = document.documentElement.lang === 'fr' ? 'fr' : 'en';
const form = document.getElementById('signup');
const status = document.getElementById('status');
const button = form.querySelector('button[type="submit"]');
let captchaProvider = null;
// SIGNUP_VERIFY_HOURS from config.json: how long the verification link works.
let verifyHours = null;

function storeLanguage(value) {
  try {
    localStorage.setItem('lang', value);
  } catch {
    // storage may be off (private windows); the switcher link still works
  }
}

function storedLanguage() {
  try {
    return localStorage.getItem('lang');
  } catch {
    return null;
  }
}

// Browser language: the English page (the default address) sends a French-speaking browser
// to the French page. A choice made with the switcher is remembered and wins; a link to the
// French page is never overruled by the browser's language alone.
function followBrowserLanguage() {
  const switcher = document.querySelector('.lang-switch');
  if (!switcher) return false;
  switcher.addEventListener('click', () => storeLanguage(switcher.dataset.lang));
  const chosen = storedLanguage();
  const browser = (navigator.languages?.[0] || navigator.language || 'en').toLowerCase();
  const wanted = chosen === 'en' || chosen === 'fr' ? chosen : lang === 'en' && browser.startsWith('fr') ? 'fr' : lang;
  if (wanted !== lang) {
    window.location.replace(switcher.href);
    return true;
  }
  return false;
}

async function loadConfig() {
  try {
    const response = await fetch(new URL('../config.json', import.meta.url), { headers: { Accept: 'application/json' } });
    if (!response.ok) return {};
    return await response.json();
  } catch {
    return {}; // no config: the form still works with the rule's default access
  }
}

function applyConfig(config) {
  // Who invites (SIGNUP_ORG_NAME), as the mails say it: a page that does not is phishing-like.
  if (typeof config.organization === 'string' && config.organization.trim()) {
    const inviter = document.getElementById('inviter');
    inviter.textContent = t(lang, 'page.inviter', { org: config.organization.trim() });
    inviter.hidden = false;
  }
  applyBranding(config);
  const options = Array.isArray(config.accessOptions) ? config.accessOptions : [];
  if (options.length > 0) {
    const select = document.getElementById('access');
    for (const { key, displayName } of options) {
      if (typeof key !== 'string' || typeof displayName !== 'string') continue;
      select.append(new Option(displayName, key));
    }
    document.getElementById('access-field').hidden = false;
  }
  const terms = config.terms;
  if (terms && typeof terms.version === 'string' && typeof terms.url === 'string') {
    const url = new URL(terms.url, document.baseURI);
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      document.getElementById('terms-link').href = url.href;
      const box = document.getElementById('acceptTerms');
      box.value = terms.version;
      box.required = true;
      document.getElementById('terms-field').hidden = false;
    }
  }
  if (Number.isInteger(config.verifyHours) && config.verifyHours > 0) verifyHours = config.verifyHours;
  const days = config.retentionDays;
  if (Number.isInteger(days) && days > 0) {
    const retention = document.getElementById('privacy-retention');
    retention.textContent = t(lang, 'privacy.retention', { days });
    retention.hidden = false;
  }
  const captcha = config.captcha;
  const widget = captcha && CAPTCHA[captcha.provider];
  if (widget && typeof captcha.siteKey === 'string') {
    captchaProvider = widget;
    const slot = document.getElementById('captcha-slot');
    const div = document.createElement('div');
    div.className = widget.className;
    div.dataset.sitekey = captcha.siteKey;
    div.dataset.language = lang;
    slot.append(div);
    const script = document.createElement('script');
    script.src = captcha.provider === 'turnstile' ? widget.script : `${widget.script}?hl=${lang}`;
    script.async = true;
    document.head.append(script);
    document.getElementById('captcha-field').hidden = false;
  }
}

/** An https:// address or a path on this site (as `site config` checks), else null. */
function siteLink(value) {
  if (typeof value !== 'string' || !value) return null;
  try {
    const url = new URL(value, document.baseURI);
    return url.protocol === 'https:' || url.origin === window.location.origin ? url.href : null;
  } catch {
    return null;
  }
}

// SIGNUP_LOGO_URL (alt text: who invites), SIGNUP_SUPPORT_CONTACT, SIGNUP_PRIVACY_URL.
function applyBranding(config) {
  const logo = siteLink(config.logoUrl);
  const org = typeof config.organization === 'string' ? config.organization.trim() : '';
  if (logo && org) {
    const img = document.getElementById('logo');
    img.alt = org;
    img.src = logo;
    img.hidden = false;
  }
  const footer = document.getElementById('site-footer');
  const support = config.support;
  const email = typeof support?.email === 'string' && /^[^\s@]+@[^\s@]+$/.test(support.email) ? support.email : null;
  const page = siteLink(support?.url);
  if (email || page) {
    const link = document.getElementById('support-link');
    link.href = email ? `mailto:${email}` : page;
    link.textContent = email || page;
    document.getElementById('support').hidden = false;
    footer.hidden = false;
  }
  const privacy = siteLink(config.privacyUrl);
  if (privacy) {
    document.getElementById('privacy-link').href = privacy;
    document.getElementById('privacy-notice').hidden = false;
    footer.hidden = false;
  }
}

function clearErrors() {
  for (const element of form.querySelectorAll('[aria-invalid]')) {
    element.removeAttribute('aria-invalid');
    const errorId = `${element.id}-error`;
    const ids = (element.getAttribute('aria-describedby') || '').split(/\s+/).filter((id) => id && id !== errorId);
    if (ids.length) element.setAttribute('aria-describedby', ids.join(' '));
    else element.removeAttribute('aria-describedby');
  }
  for (const error of form.querySelectorAll('.error')) {
    error.textContent = '';
    error.hidden = true;
  }
  status.textContent = '';
  status.className = 'status';
}

function showStatus(kind, paragraphs) {
  status.className = `status ${kind}`;
  status.replaceChildren(
    ...paragraphs.map((text) => {
      const p = document.createElement('p');
      p.textContent = text;
      return p;
    }),
  );
}

/** Puts `message` on the field `name`: visible under its label, and read with it. */
function showFieldError(name, message) {
  const input = document.getElementById(name);
  const error = document.getElementById(`${name}-error`);
  if (!input || !error) return false;
  error.textContent = message;
  error.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  const ids = (input.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
  input.setAttribute('aria-describedby', [error.id, ...ids.filter((id) => id !== error.id)].join(' '));
  return true;
}

function messageFor(code, field, retryAfter) {
  if (code === 'rate_limited' && retryAfter) return rateLimitedText(lang, retryAfter);
  if (code === 'invalid_email' && field === 'email') {
    // The API names the rule; the page can name the character the partner typed.
    const character = forbiddenLocalCharacter(document.getElementById('email').value);
    if (character) return t(lang, 'error.invalid_email.character', { char: character });
  }
  if (field && t(lang, `error.${code}.${field}`) !== `error.${code}.${field}`) return t(lang, `error.${code}.${field}`);
  if (CODES.has(code)) return t(lang, `error.${code}`);
  return t(lang, 'error.unknown');
}

function resetCaptcha() {
  const api = captchaProvider && window[captchaProvider.api];
  try {
    api?.reset?.();
  } catch {
    // the widget may not have rendered yet
  }
}

function showProblem(code, field, retryAfter) {
  const message = messageFor(code, field, retryAfter);
  if (FIELDS.includes(field) && showFieldError(field, message)) {
    showStatus('problem', [t(lang, 'error.summary'), message]);
    // The field's description now starts with the message, so a screen reader reads it
    // when the field gets focus.
    document.getElementById(field).focus();
    return;
  }
  if (code === 'captcha_failed' || CAPTCHA_FIELDS.includes(field)) {
    // The widget is another site's frame: the message goes beside it and in the status.
    const error = document.getElementById('captcha-error');
    error.textContent = message;
    error.hidden = false;
    resetCaptcha();
  }
  showStatus('problem', [message]);
  status.focus();
}

/**
 * The thank-you text: the outcome (or, for a repeat sign-up of an invited guest, whether
 * the invitation was sent again), the masked address, the reference, what happens next.
 */
function successParagraphs(outcome, requestId, address, resent) {
  const known = ['queued', 'pending_approval', 'pending_verification'];
  const state = known.includes(outcome) ? outcome : 'queued';
  const next =
    state === 'pending_verification' && verifyHours
      ? t(lang, 'next.pending_verification', { hours: verifyHours })
      : t(lang, state === 'pending_verification' ? 'next.pending_verification.nohours' : `next.${state}`);
  const masked = maskAddress(address);
  // A repeat sign-up of an invited guest says whether the invitation was sent again.
  const headline = { true: 'result.resent', false: 'result.already_sent' }[resent] || `result.${state}`;
  return [
    t(lang, headline),
    ...(masked ? [t(lang, 'result.address', { address: masked })] : []),
    `${t(lang, 'result.reference')} ${requestId}`,
    t(lang, 'result.keep'),
    t(lang, 'next.heading'),
    next,
  ];
}

function formBody() {
  const body = {};
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string') body[name] = value;
  }
  // `lang` stays: the mails (the verification link above all) follow the page's language.
  if (!body.access) delete body.access;
  return body;
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const terms = document.getElementById('acceptTerms');
  if (terms.required && !terms.checked) {
    showProblem('invalid_field', 'acceptTerms');
    return;
  }
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  showStatus('', [t(lang, 'sending')]);
  try {
    let response;
    try {
      response = await fetch(form.action, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(formBody()),
      });
    } catch {
      showStatus('problem', [t(lang, 'error.network')]);
      status.focus();
      return;
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      // not JSON (a proxy's error page): judged by the status below
    }
    if (response.status === 202 && answer && typeof answer.requestId === 'string') {
      // The address stays in this page's memory (never in a URL), shown partly masked.
      const address = document.getElementById('email').value;
      form.hidden = true;
      showStatus('success', successParagraphs(answer.status, answer.requestId, address, answer.resent));
      status.focus();
      return;
    }
    const byStatus = { 413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 503: 'service_unavailable' };
    const code = typeof answer?.code === 'string' ? answer.code : byStatus[response.status] || 'unknown';
    const field = typeof answer?.field === 'string' ? answer.field : null;
    const retryAfter = Number.parseInt(response.headers.get('Retry-After') || '', 10);
    showProblem(code, field, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

if (!followBrowserLanguage()) {
  // The script handles validation and messages itself, in the page's language.
  form.noValidate = true;
  form.addEventListener('submit', submit);
  applyConfig(await loadConfig());
}
