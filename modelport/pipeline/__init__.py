"""The pipeline: named stages that build, export, validate and write the artifact folder; and verify.

Import from the submodules (``modelport.pipeline.run``, ``.verify``, ``.records``); this
package itself stays light so that importing one record does not import torch.
"""
