"""The e-mail telling a person that something was shared with them: what (a patient's file,
an imaging study), by whom and from which hospital, until when, and the link to it.

It names no patient, not even in the body: the message leaves the hospital, and the link
shows the recipient what the share now lets them see once they are signed in. Nor does it
quote the reason given for the share, which may describe the patient. The message is queued
in the transaction of the share (the outbox), so it leaves only if the share is kept.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from concilium.platform import notify, outbox
from concilium.platform.runtime import Runtime
from concilium.platform.tables import OutboxMail, Share, Site, User

KIND = "share.created"


def send_share_notice(
    session: Session, runtime: Runtime, share: Share, *, what: str, path: str
) -> OutboxMail | None:
    """Queue the notice of ``share`` to the person it is for; nothing for a share to a site,
    or to a person without an e-mail address.

    ``what`` names what was shared, in English marked with ``N_()`` (``"an imaging study"``),
    translated for the recipient; ``path`` is its page (``/patients/12``)."""
    if not path.startswith("/"):
        raise ValueError(f"a share's page is a path such as /patients/12, got {path[:20]!r}")
    person = session.get(User, share.to_user_id) if share.to_user_id is not None else None
    if person is None or person.disabled:
        return None
    to = notify.reachable_recipient(session, person)  # a mistyped one must not undo the share
    if to is None:
        return None
    granter = session.get(User, share.granted_by_id)
    site = session.get(Site, share.from_site_id) if share.from_site_id is not None else None
    values = {
        "name": person.full_name,
        "who": granter.full_name if granter is not None else "",
        "site": site.name if site is not None else "",
        "what": what,
        "until": share.expires_at,
        "link": runtime.settings.public_url.rstrip("/") + path,
    }
    mail = notify.compose(KIND, to, "share", values)
    return outbox.enqueue(session, runtime, mail, site_id=share.from_site_id)
