"""HTTP adapter of the telesurgery service: pages under ``/telesurgery``
(:mod:`~concilium.telesurgery.web.pages`), JSON under ``/api/v1/telesurgery`` with the
gateways' timeline ingest and the server-sent event stream that feeds the supervision page and
the surgeon's view (:mod:`~concilium.telesurgery.web.api`).

Every route declares its action with ``gate`` and asks the policy about the very procedure it
touches (:func:`concilium.telesurgery.procedures.procedure_target`, through
:mod:`~concilium.telesurgery.web.access`). Gateways report their timeline with an API token of
scope ``telesurgery:gateway`` and their own enrolment token in ``X-Gateway-Token``, so a token
lent to one procedure's gateway cannot write another's. What this process holds for the web
(the link status board, the qualifications under way) is in
:mod:`~concilium.telesurgery.web.state`.
"""
