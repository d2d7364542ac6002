"""The HTML pages a protocol committee reads: one run's (``run``) and a comparison's
(``compare``), from the Jinja2 templates in ``templates/`` (``html``), with the parts every
page shares (``page``, ``tables``); and a comparison computed and written as a folder
(``comparison``: tables, limits, figures and page). The top layer of outputs."""
