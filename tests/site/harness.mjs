// The real portal for the browser tests: an in-memory Azurite (loopback, OS-chosen ports,
// telemetry off), and `funchost --port 0 --site … --site-csp … --handler b2b-signup` with
// the project's host.json and function folders, a test policy and SIGNUP_DRY_RUN=true.
// Everything lives in a temporary folder: the runner gets its own app root (so a developer's
// local.settings.json never leaks in) and its own copy of site/ with a config.json
// generated from the test policy by `b2b-signup site config` (so a running scripts/run
// keeps its own). Every wait is bounded; stop() ends only the processes started here.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TARGET_DIR = resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR || 'target');
export const BINARY = process.env.B2B_SIGNUP_BIN || join(TARGET_DIR, 'debug', 'b2b-signup');
/** The local Functions host (crates/funchost; development only). */
export const FUNCHOST = process.env.B2B_FUNCHOST_BIN || join(TARGET_DIR, 'debug', 'funchost');
export const ARTIFACTS = join(TARGET_DIR, 'site-artifacts');

// Azurite's well-known development account (public, documented by Microsoft).
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** contoso.com is invited at once, fabrikam.com waits for approval, gmail.com is refused. */
export const TEST_POLICY = {
  defaultAction: 'deny',
  verifyEmail: false,
  terms: { version: '2026-01', url: 'https://contoso.example/terms' },
  accessOptions: {
    'partner-portal': { displayName: 'Partner portal', groups: ['11111111-1111-1111-1111-111111111111'] },
    'sales-extranet': { displayName: 'Sales extranet', groups: ['22222222-2222-2222-2222-222222222222'] },
  },
  rules: [
    { domains: ['contoso.com'], action: 'invite', access: ['partner-portal', 'sales-extranet'] },
    { domains: ['fabrikam.com'], action: 'approve', access: ['partner-portal'] },
    { domains: ['gmail.com'], action: 'deny' },
  ],
};

/** Starts `command`, collecting its output; `onLine` sees each stdout/stderr line. */
function start(command, args, options, onLine) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  for (const stream of [child.stdout, child.stderr]) {
    // Always drained: a full pipe would stall the process.
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      onLine?.(line);
    });
  }
  return { child, output };
}

/** Resolves with the first match of `pattern` in the process's lines, or rejects. */
function waitForLine(command, args, options, pattern, timeoutMs, what) {
  return new Promise((resolvePromise, reject) => {
    let proc;
    const timer = setTimeout(() => {
      proc.child.kill('SIGKILL');
      reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${proc.output.slice(-40).join('\n')}`));
    }, timeoutMs);
    proc = start(command, args, options, (line) => {
      const match = pattern.exec(line);
      if (!match) return;
      clearTimeout(timer);
      resolvePromise({ ...proc, match });
    });
    proc.child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready:\n${proc.output.slice(-40).join('\n')}`));
    });
  });
}

async function startAzurite(workdir) {
  const bin = join(REPO_ROOT, 'node_modules', '.bin', 'azurite');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm ci in ${REPO_ROOT}`);
  const ports = {};
  const azurite = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('Azurite did not listen within 30 s')), 30_000);
    const proc = start(
      bin,
      [
        '--inMemoryPersistence',
        '--disableTelemetry', // never call out (telemetry, cloud metadata probe)
        '--extentMemoryLimit', '64',
        '--blobHost', '127.0.0.1', '--blobPort', '0',
        '--queueHost', '127.0.0.1', '--queuePort', '0',
        '--tableHost', '127.0.0.1', '--tablePort', '0',
      ],
      { cwd: workdir },
      (line) => {
        const m = /^Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (!m) return;
        ports[m[1]] = Number(m[2]);
        if (Object.keys(ports).length === 3) {
          clearTimeout(timer);
          resolvePromise(proc);
        }
      },
    );
    proc.child.on('exit', (code) => reject(new Error(`Azurite exited (${code}):\n${proc.output.join('\n')}`)));
  });
  const base = (port) => `http://127.0.0.1:${port}/${DEV_ACCOUNT}`;
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
    `BlobEndpoint=${base(ports.Blob)};QueueEndpoint=${base(ports.Queue)};TableEndpoint=${base(ports.Table)};`;
  return { ...azurite, connectionString };
}

/** The project's Functions app (host.json, every folder with a function.json) in `root`. */
function copyApp(root) {
  mkdirSync(root, { recursive: true });
  cpSync(join(REPO_ROOT, 'host.json'), join(root, 'host.json'));
  for (const entry of readdirSync(REPO_ROOT, { withFileTypes: true })) {
    const functionJson = join(REPO_ROOT, entry.name, 'function.json');
    if (entry.isDirectory() && existsSync(functionJson)) {
      mkdirSync(join(root, entry.name));
      cpSync(functionJson, join(root, entry.name, 'function.json'));
    }
  }
}

/** The developer's environment without anything that could point the portal elsewhere. */
function cleanEnvironment(extra) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !/^(AzureWebJobs|SIGNUP_|FUNCTIONS_|AZURE_|GRAPH_|B2B_HOST_|APPROVAL_)/.test(name),
    ),
  );
  return { ...env, RUST_LOG: 'info', NO_COLOR: '1', ...extra };
}

/** funchost's development identity provider (crates/funchost/src/identity.rs). */
export const DEV_TENANT = '00000000-0000-4000-8000-00000000d001';
export const DEV_APP = '00000000-0000-4000-8000-00000000d002';
/** The console's client id in the tests (any id: the provider takes every public client). */
export const CONSOLE_CLIENT_ID = '00000000-0000-4000-8000-00000000c0c0';

/** A port the OS says is free now (for a process that must know it before it starts). */
function freePort() {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePromise(port));
    });
  });
}

/**
 * Starts Azurite and the portal. Returns { url, storageEnv, stop(), output(), restart() }.
 * `policy` defaults to TEST_POLICY; `env` adds settings (e.g. a captcha provider).
 * `identity` ({ tokenLifetime }) adds funchost's development identity provider with its
 * HTTPS sign-in, and the admin console's settings in config.json and the page's policy
 * (`authority`: the console's). `devMail` runs the host's mail catcher (`--dev-mail`),
 * which the handler then mails to. `restart({ policy })` starts the host again on the same
 * storage with another policy (the address changes).
 */
export async function startPortal({ policy = TEST_POLICY, env: extraEnv = {}, identity = null, devMail = false } = {}) {
  for (const binary of [BINARY, FUNCHOST]) {
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run cargo build --workspace --bins`);
  }
  const workdir = mkdtempSync(join(tmpdir(), 'b2b-site-test-'));
  const processes = [];
  // SIGTERM (the runner then stops its handler), SIGKILL after 10 s; the runner before Azurite.
  const stop = async () => {
    for (const { child } of processes.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(workdir, { recursive: true, force: true });
  };
  try {
    const azurite = await startAzurite(workdir);
    processes.push(azurite);

    const appRoot = join(workdir, 'app');
    copyApp(appRoot);
    const policyPath = join(workdir, 'policy.json');
    writeFileSync(policyPath, JSON.stringify(policy, null, 2));
    const site = join(workdir, 'site');
    cpSync(join(REPO_ROOT, 'site'), site, {
      recursive: true,
      filter: (source) => !source.endsWith('config.json'),
    });
    const env = cleanEnvironment({
      AzureWebJobsStorage: azurite.connectionString,
      SIGNUP_POLICY_PATH: policyPath,
      SIGNUP_DRY_RUN: 'true',
      B2B_HOST_FUNCTION_KEYS: 'default=site-test-key',
      ...extraEnv,
    });
    const identityArgs = [];
    let siteEnv = env;
    let authority = null;
    if (identity) {
      const httpsPort = await freePort();
      authority = `https://127.0.0.1:${httpsPort}/.dev-identity/${DEV_TENANT}`;
      identityArgs.push('--dev-identity', '--dev-identity-https-port', String(httpsPort));
      if (identity.tokenLifetime) identityArgs.push('--dev-identity-token-lifetime', String(identity.tokenLifetime));
      // For the page's build only: the handler gets its settings from the provider.
      siteEnv = { ...env, SIGNUP_CONSOLE_CLIENT_ID: CONSOLE_CLIENT_ID, SIGNUP_CONSOLE_AUTHORITY: authority, SIGNUP_ADMIN_APP_ID: DEV_APP };
    }
    execFileSync(BINARY, ['site', 'config', '--policy', policyPath, '--out', join(site, 'config.json')], {
      env: siteEnv,
      stdio: ['ignore', 'ignore', 'inherit'],
    });

    // The page's Content-Security-Policy as the app states it (scripts/run does the same).
    const csp = execFileSync(BINARY, ['site', 'csp'], { env: siteEnv, encoding: 'utf8' }).trim();

    const startHost = () =>
      waitForLine(
        FUNCHOST,
        ['--port', '0', '--app-root', appRoot, '--site', site, '--site-csp', csp, '--handler', BINARY, ...identityArgs,
          // The mail catcher (crates/funchost/src/mail.rs) for the pages that need mail.
          ...(devMail ? ['--dev-mail'] : [])],
        { cwd: workdir, env },
        /^funchost listening on (http:\/\/127\.0\.0\.1:\d+)$/,
        30_000,
        'the host runner',
      );
    let host = await startHost();
    processes.push(host);
    const portal = {
      url: host.match[1],
      authority,
      csp,
      storageEnv: env,
      output: () => [...azurite.output.slice(-20), ...host.output].join('\n'),
      stop,
      async restart({ policy: next }) {
        const exited = new Promise((done) => host.child.once('exit', done));
        host.child.kill('SIGTERM');
        await exited;
        processes.splice(processes.indexOf(host), 1);
        writeFileSync(policyPath, JSON.stringify(next, null, 2));
        host = await startHost();
        processes.push(host);
        portal.url = host.match[1];
      },
    };
    return portal;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `b2b-signup requests show ID --json` against the portal's storage. */
export function showRequest(portal, id) {
  const text = execFileSync(BINARY, ['requests', 'show', id, '--json'], {
    env: portal.storageEnv,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(text);
}

/** The Chromium flags of the brief: headless, no sandbox, nothing that calls home. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * The portal (`startPortal(options)`) and a headless Chromium, started together. Returns
 * { portal, browser }; whichever started is stopped by `stopBoth` even if the other failed.
 */
export async function startWithBrowser(chromium, options = {}) {
  const [started, launched] = await Promise.allSettled([
    startPortal(options),
    // launch() gives Chromium a fresh --user-data-dir of its own, removed on close; each
    // context is a fresh profile state on top of it.
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 }),
  ]);
  const both = { portal: started.value, browser: launched.value };
  for (const outcome of [started, launched]) {
    if (outcome.status === 'rejected') {
      await stopBoth(both);
      throw outcome.reason;
    }
  }
  return both;
}

export async function stopBoth({ portal, browser } = {}) {
  await browser?.close();
  await portal?.stop();
}

/** A page in a fresh context whose requests may go to 127.0.0.1 only; any other address
 * is aborted and recorded in `external`. */
export async function localPage(browser, external, options = {}) {
  const context = await browser.newContext({ locale: 'en-GB', ...options });
  context.setDefaultTimeout(10_000);
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    external.push(url.href);
    return route.abort();
  });
  return context.newPage();
}
