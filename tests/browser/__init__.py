"""Real-browser tests: Debian's headless chromium driven through Playwright."""
