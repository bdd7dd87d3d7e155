// warden's live timeline: appends the journal records the server streams
// for this task. Text goes in with textContent only, never as HTML.
"use strict";
(function () {
  const list = document.getElementById("timeline");
  if (!list || !list.dataset.stream || !window.EventSource) {
    return;
  }
  const live = document.getElementById("live");
  const status = document.getElementById("task-status");
  const say = (text) => {
    if (live) {
      live.textContent = text;
    }
  };
  const source = new EventSource(list.dataset.stream);
  source.addEventListener("open", () => say("live"));
  source.addEventListener("error", () => say("reconnecting…"));
  source.addEventListener("record", (e) => {
    let r;
    try {
      r = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    const seq = Number(r.seq);
    if (!Number.isSafeInteger(seq)) {
      return;
    }
    for (const li of list.children) {
      if (li.dataset.seq === String(seq)) {
        return;
      }
    }
    const kind = /^[a-z-]{1,32}$/.test(r.kind) ? r.kind : "other";
    const li = document.createElement("li");
    li.dataset.seq = String(seq);
    li.className = "kind-" + kind + " new";
    const time = document.createElement("time");
    time.textContent = String(r.time);
    const label = document.createElement("span");
    label.className = "kind";
    label.textContent = kind;
    const text = document.createElement("pre");
    text.textContent = String(r.text);
    li.append(time, " ", label, text);
    list.appendChild(li);
    const empty = document.getElementById("timeline-empty");
    if (empty) {
      empty.remove();
    }
    // An answered approval no longer waits; a finished task waits for none.
    const waiting = document.getElementById("waiting");
    if (waiting && kind === "approval") {
      for (const item of waiting.querySelectorAll("li[data-step]")) {
        if (item.dataset.step === String(r.step)) {
          item.remove();
        }
      }
    }
    if (waiting && (kind === "outcome" || !waiting.querySelector("li[data-step]"))) {
      waiting.remove();
    }
    if (kind === "outcome") {
      if (status) {
        status.textContent = "done: " + String(r.status);
        status.className = "badge " + (/^[a-z-]{1,32}$/.test(r.status) ? r.status : "done");
      }
      source.close();
      say("finished");
    }
  });
})();
