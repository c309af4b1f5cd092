#!/usr/bin/env node
// scripts/site/build.mjs — writes the sign-up page's HTML, English at site/ and French at
// site/fr/, from the templates beside this script and the one dictionary,
// site/assets/i18n.js. The pages are checked in (static hosting needs no build step);
// edit the templates or the dictionary, then run:
//
//     node scripts/site/build.mjs            # rewrite site/*.html and site/fr/*.html
//     node scripts/site/build.mjs --check    # exit 1 if a checked-in page is out of date
//
// Templates know five things: {{>name}} (the partial _name.html, on a line of its own),
// {{t:key}} (a dictionary string, HTML-escaped), {{lang}},
// {{root}} (the way back to site/ from the page: "" or "../"), {{altLang}} / {{altHref}}
// (the same page in the other language), and {{errorOutcomes}} (one block per error code,
// shown by CSS :target from the fragment the API's 303 adds).
//
// A folder of templates (templates/console/) is a folder of pages (site/console/ and
// site/fr/console/), with {{root}} one level further up. The files of VENDORED are copied
// from node_modules into site/assets/vendor/ (the console's MSAL.js, with its licence): the
// site needs no bundler, and --check also fails when a copy differs from the pinned package.
import { readFileSync, writeFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ERROR_CODES, LANGUAGES, STRINGS, t } from '../../site/assets/i18n.js';

const here = dirname(fileURLToPath(import.meta.url));
const siteDir = join(here, '..', '..', 'site');
const templatesDir = join(here, 'templates');
const modulesDir = join(here, '..', '..', 'node_modules');

/** [file in node_modules, copy under site/]: what the pages load from a pinned package. */
export const VENDORED = [
  ['@azure/msal-browser/lib/msal-browser.min.js', 'assets/vendor/msal-browser.min.js'],
  ['@azure/msal-browser/LICENSE', 'assets/vendor/msal-browser.LICENSE.txt'],
];

/** Template files, `sub/name.html` for those in a folder (one level). */
function templateFiles() {
  const files = [];
  for (const entry of readdirSync(templatesDir).sort()) {
    if (statSync(join(templatesDir, entry)).isDirectory()) {
      for (const inner of readdirSync(join(templatesDir, entry)).sort()) {
        if (inner.endsWith('.html')) files.push(`${entry}/${inner}`);
      }
    } else if (entry.endsWith('.html')) {
      files.push(entry);
    }
  }
  return files;
}
const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function errorOutcomes(lang) {
  return ERROR_CODES.map((code) => {
    // Captcha widgets need JavaScript: say so to a browser that has it off.
    const nojs =
      code === 'captcha_failed' ? `<noscript><p>${escapeHtml(t(lang, 'error.nojs_needed'))}</p></noscript>` : '';
    return `    <div class="outcome problem" id="${code}"><p>${escapeHtml(t(lang, `error.${code}`))}</p>${nojs}</div>`;
  }).join('\n');
}

/** Every page in every language: [relative path under site/, HTML]. */
export function render() {
  const pages = [];
  const files = templateFiles();
  // `_name.html` is a partial, put in place of {{>name}} in the pages.
  const partials = Object.fromEntries(
    files.filter((f) => f.startsWith('_')).map((f) => [f.slice(1, -5), readFileSync(join(templatesDir, f), 'utf8')]),
  );
  for (const template of files.filter((f) => !f.startsWith('_'))) {
    const source = readFileSync(join(templatesDir, template), 'utf8').replace(/\{\{>(\w+)\}\}\n/g, (whole, name) => {
      if (!(name in partials)) throw new Error(`${template}: no partial _${name}.html`);
      return partials[name];
    });
    for (const lang of LANGUAGES) {
      const altLang = LANGUAGES.find((l) => l !== lang);
      const folder = (l) => (l === 'en' ? '' : `${l}/`);
      const depth = template.split('/').length - 1;
      const root = '../'.repeat(depth + (lang === 'en' ? 0 : 1));
      const page = template.replace(/(^|\/)index\.html$/, '$1');
      const values = {
        lang,
        root,
        altLang,
        altHref: `${root}${folder(altLang)}${page}` || './',
        errorOutcomes: errorOutcomes(lang),
      };
      const html = source.replace(/\{\{(t:)?([\w.]+)\}\}/g, (whole, isString, key) => {
        if (isString) {
          if (!(key in STRINGS[lang])) throw new Error(`${template}: no ${lang} string "${key}"`);
          return escapeHtml(t(lang, key));
        }
        if (!(key in values)) throw new Error(`${template}: unknown placeholder ${whole}`);
        return values[key];
      });
      pages.push([`${folder(lang)}${template}`, html]);
    }
  }
  return pages;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = 0;
  const copies = VENDORED.map(([from, to]) => [to, readFileSync(join(modulesDir, from), 'utf8')]);
  for (const [path, html] of [...render(), ...copies]) {
    const target = join(siteDir, path);
    let current = null;
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing: written below, or reported as stale
    }
    if (current === html) continue;
    if (check) {
      console.error(`site/${path} is out of date: run node scripts/site/build.mjs`);
      stale += 1;
    } else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, html);
      console.log(`wrote site/${path}`);
    }
  }
  process.exit(stale ? 1 : 0);
}
