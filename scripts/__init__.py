"""The files that run inside Adobe's applications (not Python): Lightroom's export preset, Bridge's startup
script, Photoshop's script. Shipped with the package as ``focusdrop.scripts`` for ``focusdrop install``."""
