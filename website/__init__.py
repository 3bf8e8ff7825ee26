"""The course as a static web site: every chapter with its executed outputs, the assignments' task text, and
the gradient-flow explorers live without a kernel. Build with ``python -m website build``.

A room of its own beside ``reslab`` and ``autograder``: it reads the repository's ``course/`` and
``exercises/`` and needs Sphinx, which the library (installed on its own, imported by the grader's sandbox)
must not depend on. The explorers' numbers and front end come from the library (``reslab.widgets.static``).
"""
