"""Models: the visual-prefix model (``prefix``), its LMs and encoders, how a name becomes a spec (``spec``)
and a spec a loaded model (``loading``), and the interface any model implements to be evaluated (``api``)."""
