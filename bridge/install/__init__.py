"""``focusdrop install`` and ``uninstall``: FocusDrop's files for Lightroom, Bridge and Photoshop (adobe.py)
and the login service (service.py), written with the absolute paths filled in, and a record of what was
written so that uninstall removes exactly that (record.py)."""
