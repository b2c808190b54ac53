-- FocusDrop's Lightroom Classic plug-in: File > Export > "FocusDrop" stacks the selected bracket through
-- the FocusDrop hot folder and, if asked, adds the layered result to the catalogue above the first frame.
return {
	LrSdkVersion = 6.0,
	LrSdkMinimumVersion = 6.0,
	LrToolkitIdentifier = "org.focusdrop.lightroom",
	LrPluginName = "FocusDrop",
	LrPluginInfoUrl = "https://github.com/focusdrop/focusdrop",
	LrExportServiceProvider = {
		title = "FocusDrop",
		file = "FocusDropExportServiceProvider.lua",
	},
	VERSION = { major = 0, minor = 1, revision = 0, build = 0 },
}
