// A small JSON-lines bridge from the Python tests to Playwright (playwright-core from npm) driving
// Debian's Chromium, headless. One request per line on stdin: {"id", "op", "args"}; one answer per
// line on stdout: {"id", "ok": true, "value"} or {"id", "ok": false, "error"}.
//
// Environment: TIDEGATE_NODE_DIR (where node_modules/playwright-core is), TIDEGATE_CHROMIUM (the
// browser, default /usr/bin/chromium), TIDEGATE_BROWSER_PROFILE (a fresh, empty user-data-dir).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import path from "node:path";

const nodeDir = process.env.TIDEGATE_NODE_DIR;
const require = createRequire(path.join(nodeDir, "node_modules", "noop.js"));
const { chromium } = require("playwright-core");

const context = await chromium.launchPersistentContext(process.env.TIDEGATE_BROWSER_PROFILE, {
  executablePath: process.env.TIDEGATE_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1440, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
  ],
});
const page = context.pages()[0] || (await context.newPage());
const problems = [];
const dialogs = [];
page.on("console", (message) => {
  if (message.type() === "error") problems.push(`console: ${message.text()}`);
});
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("dialog", async (dialog) => {
  dialogs.push(dialog.message());
  await dialog.accept();
});

const ops = {
  goto: async ({ url }) => {
    const response = await page.goto(url, { waitUntil: "domcontentloaded" });
    return { status: response ? response.status() : null, url: page.url() };
  },
  url: async () => page.url(),
  click: async ({ selector, timeout }) => {
    await page.locator(selector).first().click({ timeout });
    await page.waitForLoadState("domcontentloaded");
    return page.url();
  },
  fill: async ({ selector, value, timeout }) => page.locator(selector).first().fill(value, { timeout }),
  check: async ({ selector, timeout }) => page.locator(selector).first().check({ timeout }),
  select: async ({ selector, value, timeout }) => page.locator(selector).first().selectOption(value, { timeout }),
  text: async ({ selector, timeout }) => page.locator(selector).first().innerText({ timeout }),
  texts: async ({ selector }) => page.locator(selector).allInnerTexts(),
  count: async ({ selector }) => page.locator(selector).count(),
  attribute: async ({ selector, name, timeout }) => page.locator(selector).first().getAttribute(name, { timeout }),
  wait: async ({ selector, state, ms }) => {
    await page.locator(selector).first().waitFor({ state: state || "visible", timeout: ms });
    return true;
  },
  waitText: async ({ selector, text, ms }) => {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ state: "visible", timeout: ms });
    return true;
  },
  waitUrl: async ({ pattern, ms }) => {
    await page.waitForURL(new RegExp(pattern), { timeout: ms });
    return page.url();
  },
  screenshot: async ({ file, fullPage }) => {
    await page.screenshot({ path: file, fullPage: fullPage !== false });
    return file;
  },
  evaluate: async ({ expression }) => page.evaluate(expression),
  problems: async () => problems.splice(0, problems.length),
  dialogs: async () => dialogs.splice(0, dialogs.length),
  close: async () => {
    await context.close();
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, error: `not JSON: ${error.message}` }) + "\n");
    continue;
  }
  const handler = ops[request.op];
  let answer;
  if (!handler) {
    answer = { id: request.id, ok: false, error: `unknown op ${request.op}` };
  } else {
    try {
      const value = await handler(request.args || {});
      answer = { id: request.id, ok: true, value: value === undefined ? null : value };
    } catch (error) {
      answer = { id: request.id, ok: false, error: String(error && error.message ? error.message : error) };
    }
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
  if (request.op === "close") break;
}
process.exit(0);
