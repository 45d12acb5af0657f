"""The report as a reader gets it: the Markdown and HTML pages (``pages``), the
explorer page (``explorer``), and publishing the finished site in one swap
(``publish``). The report stage's key covers this package's code and the templates
only, so a change to the engine that runs the build renders nothing again.
"""
