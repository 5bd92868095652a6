// Headless Chromium from Debian's package (/usr/bin/chromium), driven by playwright-core:
// no browser is ever downloaded. Each launch gets a fresh profile directory, removed
// when the test ends. Where Chromium is missing the tests are skipped with the reason
// printed (CI installs it: .ci/ensure-chromium).
import { existsSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { makeTempDir } from './node.js';
import type { Teardown } from './process.js';

export const CHROMIUM = process.env.WELDR_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium, or run .ci/ensure-chromium as root), or point WELDR_CHROMIUM at one`;
}

/** A browser with a fresh profile, closed when the test ends. */
export async function openBrowser(t: Teardown): Promise<BrowserContext> {
  const profile = makeTempDir(t, 'weldr-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  // Registered after the profile's removal, so it runs first (ava runs teardowns last-in first-out).
  t.teardown(() => context.close());
  return context;
}

/** A page whose script errors fail the test instead of passing unseen. */
export async function openPage(t: Teardown, context: BrowserContext, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(url);
  return { page, errors };
}
