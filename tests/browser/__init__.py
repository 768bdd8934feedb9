"""Browser tests of the Bridge (headless Chromium via playwright-core)."""
