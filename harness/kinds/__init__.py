"""Task kinds (VQA, captioning, naming): one module each, registered in ``harness.kinds.base.KINDS``."""
