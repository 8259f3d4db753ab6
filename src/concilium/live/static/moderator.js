// Moderator console: every question as it arrives, with approve, reject, answer and merge.

import { _, format } from "/static/i18n.js";
import { session, status, wireSession } from "./live-common.js";

let socket;

function actions(li, event) {
  if (!["submitted", "approved"].includes(event.status)) return;
  const bar = document.createElement("div");
  bar.className = "actions";
  const button = (label, send) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", send);
    bar.append(b);
    return b;
  };
  if (event.status === "submitted") {
    button(_("Approve"), () => socket.send({ type: "moderate", question_id: event.id, action: "approve" }));
  }
  button(_("Reject"), () => socket.send({ type: "moderate", question_id: event.id, action: "reject" }));
  const answer = document.createElement("input");
  answer.setAttribute("aria-label", format(_("Answer to question %(id)s"), { id: event.id }));
  answer.placeholder = _("Answer");
  bar.append(answer);
  button(_("Answer"), () => socket.send({ type: "moderate", question_id: event.id, action: "answer", answer: answer.value }));
  const into = document.createElement("input");
  into.type = "number";
  into.setAttribute("aria-label", format(_("Merge question %(id)s into question number"), { id: event.id }));
  into.placeholder = _("Merge into no.");
  bar.append(into);
  button(_("Merge"), () => socket.send({ type: "moderate", question_id: event.id, action: "merge", into: Number(into.value) }));
  li.append(bar);
}

socket = wireSession({ questionActions: actions });
status(format(_("Moderating session %(id)s."), { id: session.id }));
