// Drives the customer web form as a subscriber would, in Debian's headless Chromium:
// log in, change the DHCP pool range and the SSID, wait until each is applied, log out.
// Screenshots of every page go to $SHOTS (if set). Exits non-zero with the reason on failure.
//
// Environment: PORTAL (e.g. http://127.0.0.1:8080), USERNAME, PASSWORD, POOL_MIN, POOL_MAX, SSID,
// SHOTS (a folder, optional).
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("PORTAL");
const shots = process.env.SHOTS;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (msg) => {
  console.error(`portal test: ${msg}`);
  await browser.close();
  process.exit(1);
};
try {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const page = await ctx.newPage();
  const shot = async (name, p = page) => {
    if (shots) await p.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  };

  await page.goto(`${base}/`);
  if (!page.url().endsWith("/login")) await fail(`an anonymous visit was not sent to /login: ${page.url()}`);
  await shot("login");
  // Keyboard only: the fields are labelled and in order.
  await page.getByLabel("Subscriber id").fill(env("USERNAME"));
  await page.getByLabel("Password").fill("not the password");
  await page.keyboard.press("Enter");
  await page.waitForLoadState();
  if (!(await page.getByRole("alert").textContent()).includes("do not match")) await fail("a wrong password was not refused");
  await page.getByLabel("Password").fill(env("PASSWORD"));
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/`);
  await page.getByRole("heading", { name: "Status" }).waitFor();
  await shot("status");

  // LAN and DHCP: first a refused value (kept, with the message next to the field), then a good one.
  await page.getByRole("link", { name: "LAN and DHCP" }).click();
  await page.getByLabel("First address handed out").fill("192.168.0.10");
  await page.getByRole("button", { name: "Save and apply" }).click();
  const err = await page.locator("#pool_min-err").textContent();
  if (!err.includes("outside the LAN subnet")) await fail(`no message next to the field: ${err}`);
  if ((await page.getByLabel("First address handed out").inputValue()) !== "192.168.0.10") await fail("the typed value was lost");
  await shot("lan-refused");
  await page.getByLabel("First address handed out").fill(env("POOL_MIN"));
  await page.getByLabel("Last address handed out").fill(env("POOL_MAX"));
  await shot("lan");
  await page.getByRole("button", { name: "Save and apply" }).click();
  await page.getByText("being applied").or(page.getByText("Done: your gateway uses the new settings.")).first().waitFor();
  await shot("lan-applying");
  await page.getByText("Done: your gateway uses the new settings.").waitFor({ timeout: 90000 });
  await shot("lan-applied");

  // Wi-Fi.
  await page.getByRole("link", { name: "Wi-Fi" }).click();
  await page.getByLabel("Network name (SSID)").fill(env("SSID"));
  await page.getByLabel("Password (leave empty to keep the current one)").fill("a-long-wifi-password");
  await shot("wifi");
  await page.getByRole("button", { name: "Save and apply" }).click();
  await page.getByText("Done: your gateway uses the new settings.").waitFor({ timeout: 90000 });

  // The same page on a phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies((await ctx.cookies()).map((c) => ({ ...c })));
  const p2 = await phone.newPage();
  await p2.goto(`${base}/lan`);
  await p2.getByLabel("First address handed out").waitFor();
  if ((await p2.getByLabel("First address handed out").inputValue()) !== env("POOL_MIN")) await fail("the saved range is not shown");
  await shot("lan-phone", p2);

  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(`${base}/login`);
  await page.goto(`${base}/lan`);
  if (!page.url().endsWith("/login")) await fail("the session outlived its log-out");
  console.log("portal test: logged in, pool range and SSID applied, logged out");
  await browser.close();
} catch (e) {
  await fail(e.stack || String(e));
}
