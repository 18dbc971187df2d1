"""When parity fails, where: the first module, by its dotted path, whose output leaves the tolerance.

Importing this package stays light (the records only); ``modelport.localize.api`` does the work.
"""

from modelport.localize.records import Localization, LocalizeStatus, ModuleError, ValueCheck

__all__ = ["Localization", "LocalizeStatus", "ModuleError", "ValueCheck"]
