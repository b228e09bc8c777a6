// A classic (non-module) script: if the app's modules fail to load or throw while loading
// (an old browser, a broken deploy, a proxy that mangles a file), the page still says what
// happened instead of staying blank. It cannot use i18n.js, which may be what failed, so its
// one message carries both languages.
// Module scripts run before the load event, so by then app.js has either marked the page
// booted or failed; the short delay only lets the browser finish reporting the failure.
window.addEventListener("load", () => {
  setTimeout(() => {
    if (document.documentElement.dataset.booted) return;
    const main = document.getElementById("main");
    const message = document.createElement("p");
    message.setAttribute("role", "alert");
    message.className = "boot-failed";
    message.textContent = "页面没有加载成功，请刷新或稍后再试。The page did not load; please reload or try again later.";
    main.replaceChildren(message);
  }, 300);
});
