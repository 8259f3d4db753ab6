"""An administrator on a phone finds a message that failed while the relay was away, and
tries it again once the relay is back: the serving process delivers it."""

from __future__ import annotations

import re
import threading
import time

import pytest

from concilium.config import Settings
from concilium.platform import accounts
from concilium.platform.db import transaction
from concilium.platform.demo import SITES
from concilium.platform.mail import Mail
from concilium.platform.outbox import enqueue
from concilium.platform.runtime import Runtime
from serving import free_port, running_server
from smtp_peer import Recorder, smtp_server

from .browsing import sign_in
from .test_admin_pages import PHONE, provision_admin


def queue_one(data_dir) -> None:
    runtime = Runtime.start(Settings(data_dir=data_dir))
    try:
        with transaction(runtime.sessions) as db:
            mail = Mail(
                "account.notice",
                ("Dr Jeanne Martin <jeanne.martin@chr-metz-thionville.fr>",),
                "Votre accès",
                "Texte.",
            )
            # A message of the administrator's hospital: they see it.
            site = accounts.site_by_finess(db, SITES[0][1])
            enqueue(db, runtime, mail, site_id=site.id)
    finally:
        runtime.close()


@pytest.mark.browser
def test_a_failed_message_is_tried_again_from_a_phone(tmp_path, browser, artifacts):
    relay_port = free_port()
    settings = {
        "CONCILIUM_SMTP_HOST": "127.0.0.1",
        "CONCILIUM_SMTP_PORT": str(relay_port),
        "CONCILIUM_SMTP_SECURITY": "none",
        "CONCILIUM_MAIL_FROM": "Concilium CHR Metz <concilium@chr-metz.fr>",
        "CONCILIUM_MAIL_MAX_ATTEMPTS": "1",
        "CONCILIUM_MAIL_POLL_SECONDS": "0.2",
    }
    with running_server(tmp_path, **settings) as server:
        key = provision_admin(server)
        # From a thread: Playwright keeps an event loop in this one, where the platform
        # refuses to begin a write.
        worker = threading.Thread(target=queue_one, args=(server.data_dir,))
        worker.start()
        worker.join()
        context = browser.new_context(viewport=PHONE, base_url=server.url)
        page = context.new_page()
        sign_in(page, "claire", "first-admin-pass-1", key)
        page.goto("/admin/outbox?state=failed")
        deadline = time.monotonic() + 90  # a loaded machine is slow
        while "jeanne.martin@" not in page.content() and time.monotonic() < deadline:
            time.sleep(0.3)  # the server's dispatcher tries it with the relay away
            page.reload()
        row = page.locator("tbody tr").first
        assert "ConnectionRefusedError" in row.inner_text()
        # A phone shows each message as a card: nothing spills sideways.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert page.locator("table.stack thead").bounding_box()["height"] <= 1
        page.screenshot(path=str(artifacts / "outbox-phone.png"), full_page=True)

        recorder = Recorder()
        with smtp_server(relay_port, recorder):
            row.get_by_role("button", name="Retry now").click()
            page.wait_for_url(re.compile(r".*/admin/outbox\?state=failed$"))
            deadline = time.monotonic() + 90  # a loaded machine is slow
            while not recorder.received and time.monotonic() < deadline:
                time.sleep(0.1)
        assert [r.recipients for r in recorder.received] == [
            ["jeanne.martin@chr-metz-thionville.fr"]
        ]
        page.goto("/admin/outbox?state=sent")
        assert "jeanne.martin@" in page.locator("tbody").inner_text()
