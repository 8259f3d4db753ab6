// Find a person by name as one types: every input[data-people-search] (its value is the
// directory's address, /api/v1/people) becomes a combobox (WAI-ARIA 1.2 pattern) whose
// choice fills in the user name the form expects. Without scripts the input still takes a
// user name typed in full.
//
// data-people-separator="," : the input holds several user names; the search works on the
// last one and a choice replaces it.

import { _, format, ngettext } from "/static/i18n.js";

const DELAY_MS = 250;
const MIN_CHARS = 2;
let counter = 0;

function describe(person) {
  const where = person.hospitals.map((h) => h.name).join(", ");
  const what = person.specialty || person.profession;
  return [where, what].filter(Boolean).join(" · ");
}

function enhance(input) {
  counter += 1;
  const listId = `people-list-${counter}`;
  const statusId = `people-status-${counter}`;
  const separator = input.dataset.peopleSeparator || "";
  const wrapper = document.createElement("div");
  wrapper.className = "people-search";
  input.parentNode.insertBefore(wrapper, input);
  wrapper.appendChild(input);
  const list = document.createElement("ul");
  list.id = listId;
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", _("People found"));
  list.hidden = true;
  wrapper.appendChild(list);
  const status = document.createElement("span");
  status.id = statusId;
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  wrapper.appendChild(status);

  input.removeAttribute("list"); // the listbox replaces any <datalist>
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listId);
  input.setAttribute("autocomplete", "off");

  let people = [];
  let active = -1;
  let timer = 0;
  let asked = 0;

  const parts = () => (separator ? input.value.split(separator) : [input.value]);
  const typed = () => parts().at(-1).trim();

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    active = index;
    for (const [i, item] of [...list.children].entries()) {
      item.setAttribute("aria-selected", String(i === index));
    }
    if (index >= 0) {
      const item = list.children[index];
      input.setAttribute("aria-activedescendant", item.id);
      item.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function choose(index) {
    const person = people[index];
    if (!person) return;
    if (separator) {
      const kept = parts().slice(0, -1).map((p) => p.trim()).filter(Boolean);
      input.value = [...kept, person.username].join(`${separator} `);
    } else {
      input.value = person.username;
    }
    status.textContent = format(_("%(name)s chosen."), { name: person.full_name });
    close();
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function show(found) {
    people = found;
    list.replaceChildren();
    for (const [i, person] of found.entries()) {
      const item = document.createElement("li");
      item.id = `${listId}-${i}`;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.dataset.username = person.username;
      const name = document.createElement("span");
      name.className = "people-name";
      name.textContent = `${person.full_name} (${person.username})`;
      item.appendChild(name);
      const detail = describe(person);
      if (detail) {
        const small = document.createElement("small");
        small.textContent = detail;
        item.appendChild(small);
      }
      // mousedown, not click: the input keeps its focus and does not close the list first.
      item.addEventListener("mousedown", (event) => {
        event.preventDefault();
        choose(i);
      });
      list.appendChild(item);
    }
    const n = found.length;
    status.textContent = n
      ? format(ngettext("%(count)s person found.", "%(count)s people found.", n), { count: n })
      : _("Nobody found.");
    list.hidden = n === 0;
    input.setAttribute("aria-expanded", String(n > 0));
    active = -1;
    input.removeAttribute("aria-activedescendant");
  }

  async function search() {
    const text = typed();
    if (text.length < MIN_CHARS) {
      people = [];
      close();
      return;
    }
    const url = new URL(input.dataset.peopleSearch, window.location.href);
    url.searchParams.set("q", text);
    asked += 1;
    const mine = asked;
    try {
      const response = await fetch(url, { headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const found = await response.json();
      if (mine === asked) show(found);
    } catch {
      if (mine === asked) {
        close();
        status.textContent = _("The directory cannot be searched now; type the user name.");
      }
    }
  }

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(search, DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    const open = !list.hidden;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      if (!open && people.length) {
        list.hidden = false;
        input.setAttribute("aria-expanded", "true");
      }
      if (people.length) highlight((active + 1) % people.length);
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      highlight(active <= 0 ? people.length - 1 : active - 1);
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault(); // choose, do not submit the form yet
      choose(active);
    } else if (event.key === "Escape" && open) {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", close);
}

for (const input of document.querySelectorAll("input[data-people-search]")) {
  enhance(input);
}
