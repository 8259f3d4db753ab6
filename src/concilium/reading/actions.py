"""What people may do with the teleradiology service, as actions of the one policy."""

from __future__ import annotations

from concilium.platform.policy import ADMIN, PATIENT_WRITERS, Action, Rule

_ORDER_READERS = frozenset({"radiologist", "technologist"})


class ReadingAction:
    """The service's actions; ``concilium.platform.policy.decide`` applies their rules."""

    # Which hospital systems may send orders for a site: the site's (or the platform's)
    # administrators, as for DICOM nodes.
    HL7_SENDER_MANAGE = Action("hl7.sender.manage", Rule(ADMIN, "admin"))
    # The message log holds every message raw, patient data included: the site's
    # administrators review it for interface problems (each opening audited), never the
    # platform administrator, who administers and does not read patient data.
    HL7_MESSAGE_READ = Action(
        "hl7.message.read", Rule(ADMIN, "reading:admin", platform_admin=False)
    )
    # The imaging orders of a site are read by its radiologists and technologists.
    ORDER_READ = Action(
        "imaging_order.read", Rule(_ORDER_READERS, "reading:read", platform_admin=False)
    )
    # A radiologist's worklist: the exams routed to the groups they read in.
    WORKLIST_READ = Action(
        "reading.worklist.read",
        Rule(frozenset({"radiologist"}), "reading:read", any_site=True, platform_admin=False),
    )
    # Opening, claiming or releasing a routed exam: the site's own radiologists, and the
    # members of the routed group credentialed for its site while the order is open (the
    # routing shares the exam with them; ``reading_list.exam_target``).
    EXAM_READ = Action(
        "reading.exam.read",
        Rule(frozenset({"radiologist"}), "reading:read", via_share=True, platform_admin=False),
    )
    # Placing imaging orders for a site over FHIR (and registering their patients): the
    # site's coordinators and referring physicians, and its hospital system's account (a
    # coordinator account whose token carries the ``reading:order`` scope only).
    ORDER_PLACE = Action(
        "imaging_order.place", Rule(PATIENT_WRITERS, "reading:order", platform_admin=False)
    )
    # Scheduling modality work by hand (the worklist items' API): the site's technologists
    # and coordinators, as a department's RIS or its staff would.
    WORKLIST_ITEM_MANAGE = Action(
        "reading.worklist_item.manage",
        Rule(frozenset({"technologist", "coordinator"}), "reading:worklist", platform_admin=False),
    )
    # Writing and signing a report: the radiologists who may open the exam (the one
    # holding it, checked by ``reports.require_holder``); after the final version, the
    # routed readers' grant has ended and addenda are the site's radiologists'.
    REPORT_WRITE = Action(
        "reading.report.write",
        Rule(frozenset({"radiologist"}), "reading:write", via_share=True, platform_admin=False),
    )
    # Reading a signed report and its PDF: the site's radiologists, the routed readers
    # while they read, and the order's referring or requesting physician (the account
    # with that practitioner identifier), to whom the report is shared once signed
    # (``reading_list.report_target``).
    REPORT_READ = Action(
        "reading.report.read",
        Rule(frozenset({"radiologist"}), "reading:read", via_share=True, platform_admin=False),
    )
    # Acknowledging a critical or actionable finding of a signed report: only the
    # physician it was communicated to (the target's owner), never on their behalf.
    FINDING_ACKNOWLEDGE = Action(
        "reading.finding.acknowledge",
        Rule(frozenset(), "reading:read", self_service=True, platform_admin=False),
    )
