// Headless Chromium for page tests: Debian's /usr/bin/chromium driven by playwright-core (it never
// downloads a browser). useChromium() registers before/after hooks in the calling describe and skips
// it with a message where Chromium is absent.
import fs from 'node:fs';

import type { Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function useChromium(): () => Browser {
  let browser: Browser | null = null;
  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} not found (apt-get install chromium, or bash scripts/setup.sh)`);
      this.skip();
    }
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
  });
  return () => {
    if (!browser) throw new Error('Chromium was not started');
    return browser;
  };
}
