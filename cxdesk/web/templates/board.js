(function () {
  "use strict";
  var board = document.getElementById("board");
  var notice = document.getElementById("notice");
  var every = Number(board.getAttribute("data-poll")) || 2000;
  var url = location.pathname.replace(/\/*$/, "") + "/rows";
  var shown = null;
  function poll() {
    fetch(url, { cache: "no-store", credentials: "omit" })
      .then(function (reply) {
        if (!reply.ok) { throw new Error("HTTP " + reply.status); }
        return reply.text();
      })
      .then(function (html) {
        if (html !== shown) { board.innerHTML = html; shown = html; }
        notice.hidden = true;
      })
      .catch(function () { notice.hidden = false; })
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
