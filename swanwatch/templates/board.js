// The risk board's one script: it tells the server the browser's time zone, in a cookie
// the pages' times are rendered in. The first time (or after the zone changed) it reloads
// the page once, if the cookie took.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) { return; }
  var want = "swanwatch_tz=" + encodeURIComponent(zone);
  var has = function () { return document.cookie.split("; ").indexOf(want) >= 0; };
  if (has()) { return; }
  document.cookie = want + "; path=/; max-age=31536000; samesite=strict";
  if (has() && document.documentElement.dataset.tz !== zone) { window.location.reload(); }
})();
