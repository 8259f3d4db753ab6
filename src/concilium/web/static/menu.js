// The main menu on a phone: the "Menu" button opens and closes the list of links (the
// stylesheet shows the button and hides the list only once this script has marked the
// header, so that without scripts every link stays shown).

const button = document.querySelector(".top .menu-toggle");
const menu = button && document.getElementById(button.getAttribute("aria-controls"));

if (button && menu) {
  const header = button.closest(".top");
  const set = (open) => {
    button.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("open", open);
  };
  button.hidden = false;
  header.classList.add("has-menu");
  button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
}
