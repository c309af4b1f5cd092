// The sign-up page's words, English and French: the one dictionary. scripts/site/build.mjs
// writes the static text of every page from it (so the page reads right without
// JavaScript), and signup.js / result.js use it for the messages they show.
// Add a string to both languages; a test fails when one is missing.

import { CONSOLE_STRINGS } from './console-strings.js';

export const LANGUAGES = ['en', 'fr'];

/** The error codes of the public API a sign-up can end with (docs/openapi.yaml,
 * src/problem.rs); each has an `error.<code>` message below. */
export const ERROR_CODES = [
  'invalid_email',
  'invalid_display_name',
  'invalid_field',
  'invalid_request',
  'domain_not_allowed',
  'access_not_allowed',
  'captcha_failed',
  'rate_limited',
  'payload_too_large',
  'unsupported_media_type',
  'service_unavailable',
];

export const STRINGS = {
  en: {
    'page.title': 'Partner sign-up',
    'page.heading': 'Request guest access',
    'page.intro':
      'Work with us through our applications: tell us who you are, and you will receive an invitation by e-mail at your work address if your organisation is a partner.',
    'lang.nav': 'Language',
    'lang.switch': 'Français',
    noscript:
      'JavaScript is off in your browser. The form still works; you get the default access for your organisation.',
    'required.note': 'All fields are required unless marked optional.',
    'field.email': 'Work e-mail address',
    'field.email.hint': 'The address you use at your organisation. The invitation is sent there.',
    'field.displayName': 'Full name',
    'field.displayName.hint': 'As colleagues should see it, for example Ada Lovelace.',
    'field.company': 'Organisation (optional)',
    'field.justification': 'Why do you need access? (optional)',
    'field.justification.hint': 'A project or a contact helps an administrator decide. Up to 1000 characters.',
    'field.access': 'Access you need',
    'field.access.hint': 'If unsure, keep the default.',
    'access.default': 'The default for my organisation',
    'terms.label': 'I have read and accept the terms of use.',
    'terms.link': 'Read the terms of use',
    'captcha.label': 'Security check',
    honeypot: 'Leave this field empty',
    submit: 'Request access',
    sending: 'Sending your request…',
    'privacy.heading': 'Your information',
    'privacy.text':
      'We keep what you enter here (your e-mail address, name, organisation, the access you chose and your reason) with the date of your request, to decide on it and to invite you as a guest in our Microsoft Entra ID directory. We use it for nothing else. While your access lasts we keep it as the record of why you have it; ask your contact to see or remove it.',
    'privacy.retention':
      'A request that is refused, that fails, or whose access has ended is deleted with everything kept about it {days} days after its last change.',
    'result.queued': 'Thank you. Your request is accepted: you will receive an invitation by e-mail shortly.',
    'result.pending_approval':
      'Thank you. Your request is waiting for an administrator’s approval: you will receive an invitation by e-mail once it is approved.',
    'result.resent':
      'You were already invited and had not accepted yet: we asked Microsoft to send your invitation again. Check your mailbox, including junk mail.',
    'result.already_sent':
      'Your invitation was already sent (today, or you have accepted it): check your mailbox and your junk mail.',
    'result.reference': 'Request reference:',
    'result.keep': 'Quote this reference if you contact us about your request.',
    'result.nojs': 'Keep the address of this page: it contains your request reference.',
    'result.pending_verification':
      'Thank you. Check your mail: we sent you a link to confirm your address. Nothing happens until you open it and press its button.',
    'page.inviter': 'You are asking {org} for guest access to its applications.',
    'footer.support': 'Questions? Contact',
    'footer.privacy': 'How we handle your information (privacy notice)',
    'result.address': 'Address: {address}',
    'next.heading': 'What happens next:',
    'next.pending_verification':
      'Open the link in that mail within {hours} hours and press its button. Look in your junk mail if it is not in your inbox.',
    'next.pending_verification.nohours':
      'Open the link in that mail and press its button; the mail says how long the link works. Look in your junk mail if it is not in your inbox.',
    'next.queued':
      'Your invitation comes from Microsoft by e-mail within minutes. Look in your junk mail if it is not in your inbox, then accept it to reach our applications.',
    'next.pending_approval':
      'An administrator decides on your request, usually before the deadline given in the mail we sent you. We tell you by e-mail either way; once approved, your invitation comes from Microsoft.',
    'verify.title': 'Confirm your address',
    'verify.heading': 'Confirm your e-mail address',
    'verify.intro': 'Press the button to confirm that the address you signed up with is yours.',
    'verify.button': 'Confirm my address',
    'verify.nojs': 'This step needs JavaScript: turn it on in your browser, then open the link again.',
    'verify.missing': 'This page needs the link from the mail we sent you. Open that link, or sign up again for a new one.',
    'verify.done.queued': 'Thank you, your address is confirmed. Your invitation comes from Microsoft by e-mail shortly; look in your junk mail if it is not in your inbox.',
    'verify.done.pending_approval': 'Thank you, your address is confirmed. Your request now waits for an administrator’s approval; we will tell you by e-mail.',
    'verify.already': 'Your address was already confirmed with this link: there is nothing more to do.',
    'verify.invalid_token': 'This link is not valid, or a newer mail replaced it. Use the link in the most recent mail, or sign up again.',
    'verify.verification_expired': 'This link has expired. Sign up again to get a new one.',
    'verify.error': 'Your address could not be confirmed right now. Please try again in a minute.',
    'thanks.title': 'Request received',
    'thanks.heading': 'Request received',
    'error.title': 'Request not sent',
    'error.heading': 'Your request was not sent',
    'error.back': 'Back to the form',
    'error.back.hint': 'Your browser’s Back button returns to the form with what you entered.',
    'error.summary': 'There is a problem with your request.',
    'error.field': 'Check the field “{field}”.',
    'error.invalid_email':
      'Enter a valid e-mail address, such as name@organisation.com. Before the @, only letters, digits and . - _ \' are accepted.',
    'error.invalid_display_name': 'Enter your full name, up to 256 characters.',
    'error.invalid_field': 'Check this field: it is too long or contains characters that are not accepted.',
    'error.invalid_field.company': 'The organisation can be at most 200 characters long.',
    'error.invalid_field.justification': 'The reason can be at most 1000 characters long.',
    'error.invalid_field.acceptTerms': 'Accept the terms of use to continue.',
    'error.invalid_request': 'The form could not be read. Reload the page and try again.',
    'error.domain_not_allowed':
      'Sign-up is not open to addresses of this domain. Ask your contact at our organisation to invite you.',
    'error.access_not_allowed':
      'The access you chose is not available to your organisation. Keep the default, or choose another.',
    'error.captcha_failed': 'The security check failed. Complete it again, then send the form.',
    'error.rate_limited': 'Too many attempts. Please wait a while, then try again later.',
    'error.rate_limited.wait': 'Too many attempts. Please wait {wait}, then try again.',
    'wait.moment': 'a few seconds',
    'wait.seconds': 'about {n} seconds',
    'wait.minute': 'about a minute',
    'wait.minutes': 'about {n} minutes',
    'wait.hour': 'about an hour',
    'wait.hours': 'about {n} hours',
    'error.invalid_email.character':
      'The character “{char}” is not accepted before the @ (Microsoft Entra ID refuses it in a guest’s address): only letters, digits and . - _ \' are. Use your address without it, or another address.',
    'error.payload_too_large': 'The form is too long. Shorten your reason and try again.',
    'error.unsupported_media_type':
      'The form was sent in a format the service does not accept. Reload the page and try again.',
    'error.service_unavailable': 'The service cannot take sign-ups right now. Please try again in a minute.',
    'error.network': 'The service could not be reached. Check your connection and try again.',
    'error.unknown': 'Something went wrong. Please try again later.',
    'error.terms_required': 'Accept the terms of use to continue.',
    'error.nojs_needed':
      'This step needs JavaScript: turn it on in your browser, or ask your contact at our organisation to invite you.',
  },
  fr: {
    'page.title': 'Inscription des partenaires',
    'page.heading': 'Demander un accès invité',
    'page.intro':
      'Travaillez avec nous dans nos applications : dites-nous qui vous êtes, et vous recevrez une invitation par e-mail à votre adresse professionnelle si votre organisation est partenaire.',
    'lang.nav': 'Langue',
    'lang.switch': 'English',
    noscript:
      'JavaScript est désactivé dans votre navigateur. Le formulaire fonctionne quand même ; vous recevez l’accès par défaut de votre organisation.',
    'required.note': 'Tous les champs sont obligatoires, sauf mention « facultatif ».',
    'field.email': 'Adresse e-mail professionnelle',
    'field.email.hint': 'L’adresse que vous utilisez dans votre organisation. L’invitation y est envoyée.',
    'field.displayName': 'Nom complet',
    'field.displayName.hint': 'Tel que vos collègues doivent le voir, par exemple Ada Lovelace.',
    'field.company': 'Organisation (facultatif)',
    'field.justification': 'Pourquoi avez-vous besoin d’un accès ? (facultatif)',
    'field.justification.hint':
      'Un projet ou un contact aide un administrateur à décider. 1000 caractères au plus.',
    'field.access': 'Accès souhaité',
    'field.access.hint': 'En cas de doute, gardez l’accès par défaut.',
    'access.default': 'L’accès par défaut de mon organisation',
    'terms.label': 'J’ai lu et j’accepte les conditions d’utilisation.',
    'terms.link': 'Lire les conditions d’utilisation',
    'captcha.label': 'Contrôle de sécurité',
    honeypot: 'Laissez ce champ vide',
    submit: 'Demander l’accès',
    sending: 'Envoi de votre demande…',
    'privacy.heading': 'Vos informations',
    'privacy.text':
      'Nous conservons ce que vous saisissez ici (votre adresse e-mail, votre nom, votre organisation, l’accès choisi et votre motif) avec la date de votre demande, pour en décider et pour vous inviter comme invité dans notre annuaire Microsoft Entra ID. Nous ne les utilisons pour rien d’autre. Tant que votre accès dure, nous les gardons comme trace de la raison de cet accès ; demandez à votre contact pour les consulter ou les faire supprimer.',
    'privacy.retention':
      'Une demande refusée, qui échoue ou dont l’accès a pris fin est supprimée avec tout ce qui la concerne {days} jours après sa dernière modification.',
    'result.queued':
      'Merci. Votre demande est acceptée : vous allez recevoir une invitation par e-mail dans quelques instants.',
    'result.pending_approval':
      'Merci. Votre demande attend l’approbation d’un administrateur : vous recevrez une invitation par e-mail une fois qu’elle sera approuvée.',
    'result.resent':
      'Vous étiez déjà invité sans avoir encore accepté : nous avons demandé à Microsoft de vous renvoyer votre invitation. Consultez votre messagerie, y compris le courrier indésirable.',
    'result.already_sent':
      'Votre invitation a déjà été envoyée (aujourd’hui, ou vous l’avez acceptée) : consultez votre messagerie et votre courrier indésirable.',
    'result.reference': 'Référence de la demande :',
    'result.keep': 'Indiquez cette référence si vous nous contactez au sujet de votre demande.',
    'result.nojs': 'Conservez l’adresse de cette page : elle contient la référence de votre demande.',
    'result.pending_verification':
      'Merci. Consultez votre messagerie : nous vous avons envoyé un lien pour confirmer votre adresse. Rien ne se passe tant que vous ne l’avez pas ouvert et n’avez pas appuyé sur son bouton.',
    'page.inviter': 'Vous demandez à {org} un accès invité à ses applications.',
    'footer.support': 'Des questions ? Contactez',
    'footer.privacy': 'Comment nous traitons vos informations (politique de confidentialité)',
    'result.address': 'Adresse : {address}',
    'next.heading': 'Et ensuite :',
    'next.pending_verification':
      'Ouvrez le lien de cet e-mail dans les {hours} heures et appuyez sur son bouton. Regardez dans vos courriers indésirables s’il n’est pas dans votre boîte de réception.',
    'next.pending_verification.nohours':
      'Ouvrez le lien de cet e-mail et appuyez sur son bouton ; l’e-mail indique combien de temps le lien fonctionne. Regardez dans vos courriers indésirables s’il n’est pas dans votre boîte de réception.',
    'next.queued':
      'Votre invitation vous parvient de Microsoft par e-mail d’ici quelques minutes. Regardez dans vos courriers indésirables si elle n’est pas dans votre boîte de réception, puis acceptez-la pour accéder à nos applications.',
    'next.pending_approval':
      'Un administrateur décide de votre demande, en général avant la date limite indiquée dans l’e-mail que nous vous avons envoyé. Nous vous prévenons par e-mail dans tous les cas ; une fois la demande approuvée, votre invitation vous parvient de Microsoft.',
    'verify.title': 'Confirmez votre adresse',
    'verify.heading': 'Confirmez votre adresse e-mail',
    'verify.intro': 'Appuyez sur le bouton pour confirmer que l’adresse utilisée pour votre inscription est bien la vôtre.',
    'verify.button': 'Confirmer mon adresse',
    'verify.nojs': 'Cette étape nécessite JavaScript : activez-le dans votre navigateur, puis rouvrez le lien.',
    'verify.missing': 'Cette page a besoin du lien reçu par e-mail. Ouvrez ce lien, ou inscrivez-vous à nouveau pour en recevoir un autre.',
    'verify.done.queued': 'Merci, votre adresse est confirmée. Votre invitation vous parviendra de Microsoft par e-mail dans quelques instants ; regardez dans vos courriers indésirables si elle n’est pas dans votre boîte de réception.',
    'verify.done.pending_approval': 'Merci, votre adresse est confirmée. Votre demande attend maintenant l’approbation d’un administrateur ; nous vous préviendrons par e-mail.',
    'verify.already': 'Votre adresse a déjà été confirmée avec ce lien : il n’y a plus rien à faire.',
    'verify.invalid_token': 'Ce lien n’est pas valide, ou un e-mail plus récent l’a remplacé. Utilisez le lien du dernier e-mail, ou inscrivez-vous à nouveau.',
    'verify.verification_expired': 'Ce lien a expiré. Inscrivez-vous à nouveau pour en recevoir un nouveau.',
    'verify.error': 'Votre adresse n’a pas pu être confirmée pour le moment. Réessayez dans une minute.',
    'thanks.title': 'Demande reçue',
    'thanks.heading': 'Demande reçue',
    'error.title': 'Demande non envoyée',
    'error.heading': 'Votre demande n’a pas été envoyée',
    'error.back': 'Retour au formulaire',
    'error.back.hint': 'Le bouton Retour de votre navigateur ramène au formulaire avec ce que vous avez saisi.',
    'error.summary': 'Votre demande comporte un problème.',
    'error.field': 'Vérifiez le champ « {field} ».',
    'error.invalid_email':
      'Saisissez une adresse e-mail valide, par exemple nom@organisation.com. Avant le @, seuls les lettres, les chiffres et . - _ \' sont acceptés.',
    'error.invalid_display_name': 'Saisissez votre nom complet, 256 caractères au plus.',
    'error.invalid_field': 'Vérifiez ce champ : il est trop long ou contient des caractères non acceptés.',
    'error.invalid_field.company': 'L’organisation ne peut dépasser 200 caractères.',
    'error.invalid_field.justification': 'Le motif ne peut dépasser 1000 caractères.',
    'error.invalid_field.acceptTerms': 'Acceptez les conditions d’utilisation pour continuer.',
    'error.invalid_request': 'Le formulaire n’a pas pu être lu. Rechargez la page et réessayez.',
    'error.domain_not_allowed':
      'L’inscription n’est pas ouverte aux adresses de ce domaine. Demandez à votre contact dans notre organisation de vous inviter.',
    'error.access_not_allowed':
      'L’accès choisi n’est pas proposé à votre organisation. Gardez l’accès par défaut ou choisissez-en un autre.',
    'error.captcha_failed': 'Le contrôle de sécurité a échoué. Refaites-le, puis envoyez le formulaire.',
    'error.rate_limited': 'Trop de tentatives. Patientez un moment, puis réessayez plus tard.',
    'error.rate_limited.wait': 'Trop de tentatives. Patientez {wait}, puis réessayez.',
    'wait.moment': 'quelques secondes',
    'wait.seconds': 'environ {n} secondes',
    'wait.minute': 'environ une minute',
    'wait.minutes': 'environ {n} minutes',
    'wait.hour': 'environ une heure',
    'wait.hours': 'environ {n} heures',
    'error.invalid_email.character':
      'Le caractère « {char} » n’est pas accepté avant le @ (Microsoft Entra ID le refuse dans l’adresse d’un invité) : seuls les lettres, les chiffres et . - _ \' le sont. Utilisez votre adresse sans ce caractère, ou une autre adresse.',
    'error.payload_too_large': 'Le formulaire est trop long. Raccourcissez votre motif et réessayez.',
    'error.unsupported_media_type':
      'Le formulaire a été envoyé dans un format que le service n’accepte pas. Rechargez la page et réessayez.',
    'error.service_unavailable':
      'Le service ne peut pas prendre d’inscriptions pour le moment. Réessayez dans une minute.',
    'error.network': 'Le service est injoignable. Vérifiez votre connexion et réessayez.',
    'error.unknown': 'Une erreur s’est produite. Réessayez plus tard.',
    'error.terms_required': 'Acceptez les conditions d’utilisation pour continuer.',
    'error.nojs_needed':
      'Cette étape nécessite JavaScript : activez-le dans votre navigateur, ou demandez à votre contact dans notre organisation de vous inviter.',
  },
};
// The admin console's strings (console-strings.js), in the same dictionary.
for (const lang of LANGUAGES) Object.assign(STRINGS[lang], CONSOLE_STRINGS[lang]);

/** The string `key` in `lang`, with `{name}` placeholders filled from `values`. */
export function t(lang, key, values = {}) {
  const table = STRINGS[lang] || STRINGS.en;
  const text = table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A wait of `seconds` (a `Retry-After`) in human units: "about 50 minutes", "environ 2
 * heures". Under 45 seconds in seconds, under 90 minutes in minutes, else in hours. */
export function waitText(lang, seconds) {
  if (seconds < 10) return t(lang, 'wait.moment');
  if (seconds < 45) return t(lang, 'wait.seconds', { n: Math.round(seconds) });
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return minutes === 1 ? t(lang, 'wait.minute') : t(lang, 'wait.minutes', { n: minutes });
  const hours = Math.round(seconds / 3600);
  return hours === 1 ? t(lang, 'wait.hour') : t(lang, 'wait.hours', { n: hours });
}

/** The message for a 429 that said to wait `seconds`. */
export function rateLimitedText(lang, seconds) {
  return t(lang, 'error.rate_limited.wait', { wait: waitText(lang, seconds) });
}

/** The first character of an address's local part that the API (and Graph) refuse: letters,
 * digits and . - _ ' only, ASCII (src/domain/email.rs). `null` when there is none, or
 * when the address is not one address at all (spaces, commas: another message). */
export function forbiddenLocalCharacter(address) {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf('@');
  if (at < 0 || /[\s,]/.test(trimmed)) return null;
  return [...trimmed.slice(0, at)].find((c) => c !== '@' && !/^[A-Za-z0-9._'-]$/.test(c)) ?? null;
}

/** `ada@contoso.com` as `a•••@contoso.com`: the first character of the local part and the
 * domain, enough for a partner to spot a typo, too little to read an address off a screen.
 * `null` for what is not one address. */
export function maskAddress(address) {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf('@');
  if (at < 1 || at === trimmed.length - 1) return null;
  return `${[...trimmed][0]}•••${trimmed.slice(at)}`;
}
