# Pure helper functions. This package holds functions only: regorus
# evaluates a whole package when it is referenced through an import alias,
# so rules are imported one by one (`import data.warden.lib.env`) and
# functions live here, where a whole-package evaluation costs nothing.
package warden.fn

object_or_empty(x) := x if is_object(x)

object_or_empty(x) := {} if not is_object(x)

list(x) := x if is_array(x)

list(x) := [] if not is_array(x)

changes_state(effect) if effect in {"mutating", "destructive"}
