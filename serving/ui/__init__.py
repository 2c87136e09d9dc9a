"""The web page for responders and leaders: server-rendered HTML (Jinja2) over the loaded champions.

Served by the API process under ``/ui`` (:mod:`serving.ui.routes`), with its stylesheet under ``/ui/static``.
No build step, no network, no script needed: search and navigation are plain links and GET forms.
"""
