"""The members' web UI: server-rendered pages (Jinja2, autoescaped), French and English.

Each module registers its routes in a ``setup_*_pages`` function (``web/routes.py`` calls them
all); what the pages share is made at start by ``web/pagestate.py``. This package imports
nothing itself: a page module is imported on its route's first request (``web/lazyroutes.py``).
"""
