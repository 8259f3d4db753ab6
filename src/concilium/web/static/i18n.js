// The page's scripts speak the reader's language: the layout embeds, for the language of
// the page, every message the scripts use (see concilium.platform.i18n.script_messages).

const element = document.getElementById("concilium-messages");
const data = element ? JSON.parse(element.textContent) : { locale: "fr", messages: {}, plurals: {} };

/** The page's language ("fr" or "en"). */
export const locale = data.locale;

/** A message in the reader's language. */
export function _(message) {
  return data.messages[message] ?? message;
}

/** The singular or plural of a message for n (in French, 0 and 1 take the singular). */
export function ngettext(singular, plural, n) {
  const forms = data.plurals[singular];
  const many = locale === "fr" ? n > 1 : n !== 1;
  if (!forms) {
    return many ? plural : singular;
  }
  return many ? forms[1] : forms[0];
}

/** A message with %(name)s placeholders filled in. */
export function format(message, values) {
  return message.replace(/%\((\w+)\)s/g, (_whole, name) => String(values[name] ?? ""));
}
