// Moderator console: every question as it arrives, with approve, reject, answer and merge.

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
    button("Approve", () => socket.send({ type: "moderate", question_id: event.id, action: "approve" }));
  }
  button("Reject", () => socket.send({ type: "moderate", question_id: event.id, action: "reject" }));
  const answer = document.createElement("input");
  answer.setAttribute("aria-label", `Answer to question ${event.id}`);
  answer.placeholder = "Answer";
  bar.append(answer);
  button("Answer", () => socket.send({ type: "moderate", question_id: event.id, action: "answer", answer: answer.value }));
  const into = document.createElement("input");
  into.type = "number";
  into.setAttribute("aria-label", `Merge question ${event.id} into question number`);
  into.placeholder = "Merge into #";
  bar.append(into);
  button("Merge", () => socket.send({ type: "moderate", question_id: event.id, action: "merge", into: Number(into.value) }));
  li.append(bar);
}

socket = wireSession({ questionActions: actions });
status(`Moderating session ${session.id}.`);
