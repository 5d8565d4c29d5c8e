/**
 * The README's picture of a backtest report: `report.html` opened offline in
 * headless Chromium, from its title to the exposure chart (summary, equity,
 * drawdown, exposure), saved as a PNG. The paths the page names are shown
 * relative to the working directory.
 *
 *   npm run backtest:sample
 *   node docs/screenshotReport.mjs .tmp/backtest-report/report.html docs/backtest-report.png
 */
import { chromium } from "playwright-core"
import { resolve } from "node:path"

const [html = ".tmp/backtest-report/report.html", png = "docs/backtest-report.png"] = process.argv.slice(2)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
})
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 }, deviceScaleFactor: 1 })
  await page.goto(`file://${resolve(html)}`)
  await page.waitForFunction(() => document.querySelectorAll("canvas").length >= 3)
  const bottom = await page.evaluate((cwd) => {
    for (const el of document.querySelectorAll("h1, .muted")) {
      el.textContent = el.textContent.split(`${cwd}/./`).join("").split(`${cwd}/`).join("")
    }
    const exposure = document.getElementById("exposure")
    return Math.ceil(exposure.getBoundingClientRect().bottom + window.scrollY + 12)
  }, process.cwd())
  await page.screenshot({ path: png, fullPage: true, clip: { x: 0, y: 0, width: 1000, height: bottom } })
  console.log(png)
} finally {
  await browser.close()
}
